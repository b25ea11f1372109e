#!/usr/bin/env bash
# A group's prompts live while they are read and queued, not to the end of
# the run: every rank read all of its group's rows in one go and held each
# prompt three times (HDF5's read buffer and the row as read, the row's ids,
# the scheduler's copy), the rows as read and the ids until the run ended:
# 60,000 prompts of ~1,000 token ids (240 MB as int32) peaked at 796 MB
# resident (exit 1 under a 850 MB address-space limit), 100,000 at 1.28 GB.
# Now rows are read in blocks and each prompt is dropped once queued (361
# MB). --max-new-tokens 0: every row is done at once, without the model.
# The limit is on the data segment (ulimit -d: heap and private mappings),
# not the address space: a voltbatch linked with CUDA's libraries maps
# more than these limits in libraries alone. 100,000 prompts under 1 GB of
# data: this build needs between 0.8 and 1 GB, the one before the fix more
# than 1.2 GB.
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
run_capture bash -c 'ulimit -d 1000000 && "$@"' _ "$vb" generate --device cpu --model model \
    --input in.h5 --output out.h5 --max-new-tokens 0
check "100,000 prompts of ~1,000 ids in 1 GB of data: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
"$vb" unpack out.h5 out.jsonl >/dev/null 2>&1
check "every row is in the output with its prompt's token count" \
    [ "$(grep -cE '"finish_reason":"length","error":"","prompt_tokens":10[0-2][0-9],"completion_tokens":0' out.jsonl)" = 100000 ]
summary
