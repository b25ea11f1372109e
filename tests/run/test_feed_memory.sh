#!/usr/bin/env bash
# generate feeds its scheduler a block of rows at a time as the waiting
# line drains: every rank read, tokenized and made sequences of its
# group's whole share of the input before the first step, then queued
# them all, holding ~520 bytes a row besides every waiting prompt (10M
# rows of 1,000 ids: ~45 GB on every rank of a group), and the first step
# waited for the whole file to be tokenized. Now a rank holds a block's
# rows, the waiting line (a block or so) and the running rows.
#
# What is checked, each against a baseline run of the same tool (what a
# process maps besides its data differs by machine: no fixed limit):
#  - 100,000 prompts of ~1,000 ids (400 MB as int32) at --max-new-tokens 0
#    (every row done at once, no model) peak under 0.4 x 400 MB above the
#    same rows with 3-25 ids (80 MB here; 400 MB with the build before);
#  - 200,000 one-token rows, each generating a token, peak under 120 MB
#    above 20,000 of them (73 MB here, most of it rank 0's finished rows;
#    183 MB with the build before).
#
# usage: test_feed_memory.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
set -u
vb=$1
make_model=$2
make_input=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" long.h5 100000 300 --shared-prefix 1000 || { echo "make_ids_input failed"; exit 1; }
"$make_input" short.h5 100000 300 || { echo "make_ids_input failed"; exit 1; }

# peak NAME INPUT ARGS...: $peak_NAME, the run's peak in KiB; checks exit 0
peak() {
    local name=$1 input=$2
    shift 2
    run_peak "$vb" generate --device cpu --model model --input "$input" \
        --output "${name}_out.h5" "$@"
    local prc kib
    read -r prc kib <<<"$out"
    check "$name: exit 0 ($(tail -1 <<<"$err"))" [ "${prc:-1}" -eq 0 ]
    printf -v "peak_$name" '%s' "${kib:-999999999}"
}

peak short short.h5 --max-new-tokens 0
peak long long.h5 --max-new-tokens 0
# shellcheck disable=SC2154
check "100,000 prompts of ~1,000 ids: peak $peak_long KiB, under $peak_short + 160 MB" \
    [ "$peak_long" -lt $(( peak_short + 160000 )) ]
"$vb" unpack long_out.h5 long.jsonl >/dev/null 2>&1
check "every row is in the output with its prompt's token count" \
    [ "$(grep -cE '"finish_reason":"length","error":"","prompt_tokens":10[0-2][0-9],"completion_tokens":0' long.jsonl)" = 100000 ]

# Past one block a sequence's room is --max-model-len's: 16 keeps the KV
# cache (256 sequences' room on the CPU) small, which the prefix cache's
# LRU would touch all of as 200,000 rows pass, in both runs alike.
eot_input "$vb" 200000
mv p.h5 many.h5
eot_input "$vb" 20000
peak few p.h5 --temperature 0 --max-new-tokens 1 --max-model-len 16
peak many many.h5 --temperature 0 --max-new-tokens 1 --max-model-len 16
# shellcheck disable=SC2154
check "200,000 generating rows: peak $peak_many KiB, under 20,000 rows' $peak_few + 120 MB" \
    [ "$peak_many" -lt $(( peak_few + 120000 )) ]
check "every row stopped after one token" [ "$(one_token_rows "$vb" many_out.h5)" = 200000 ]
summary
