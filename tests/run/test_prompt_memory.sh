#!/usr/bin/env bash
# A group's prompts live while they are read and queued, not to the end of
# the run: every rank read all of its group's rows in one go and held each
# prompt three times (HDF5's read buffer and the row as read, the row's ids,
# the scheduler's copy), the rows as read and the ids until the run ended:
# 60,000 prompts of ~1,000 token ids (240 MB as int32) peaked at 796 MB
# resident (exit 1 under a 850 MB address-space limit), 100,000 at 1.28 GB.
# Now rows are read in blocks and each prompt is dropped once queued (361
# MB). --max-new-tokens 0: every row is done at once, without the model.
# What is checked: the run's peak resident memory above the same rows'
# with prompts of 3-25 ids (no shared 1,000-id prefix) stays under 1.75x
# the prompts' 400 MB of ids (about 1x with the fix, 2.9x before). Not a
# memory limit: what a process maps besides its own data differs by
# machine (CUDA's libraries, malloc arenas by core count), and a fixed
# limit that held here failed on a GPU machine.
#
# usage: test_prompt_memory.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
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
"$make_input" in.h5 100000 300 --shared-prefix 1000 || { echo "make_ids_input failed"; exit 1; }
"$make_input" short.h5 100000 300 || { echo "make_ids_input failed"; exit 1; }
run_peak "$vb" generate --device cpu --model model \
    --input short.h5 --output short_out.h5 --max-new-tokens 0
read -r base_rc base_kib <<<"$out"
check "100,000 prompts of 3-25 ids: exit 0 ($(tail -1 <<<"$err"))" [ "${base_rc:-1}" -eq 0 ]
run_peak "$vb" generate --device cpu --model model \
    --input in.h5 --output out.h5 --max-new-tokens 0
read -r rc peak_kib <<<"$out"
check "100,000 prompts of ~1,000 ids: exit 0 ($(tail -1 <<<"$err"))" [ "${rc:-1}" -eq 0 ]
check "peak ${peak_kib:-?} KiB, under the short prompts' ${base_kib:-?} + 1.75 x 400 MB" \
    [ "${peak_kib:-999999999}" -lt $(( ${base_kib:-0} + 700000 )) ]
"$vb" unpack out.h5 out.jsonl >/dev/null 2>&1
check "every row is in the output with its prompt's token count" \
    [ "$(grep -cE '"finish_reason":"length","error":"","prompt_tokens":10[0-2][0-9],"completion_tokens":0' out.jsonl)" = 100000 ]
summary
