#!/usr/bin/env bash
# generate reads a group's rows a block of 8,192 at a time as the
# scheduler's waiting line drains (src/run/run_feed.h). What is checked:
#  - the rows past the first block come out as when the group's rows fit
#    one block: 9,000 rows (an empty one, an error row, in the second
#    block) at --n 2, sampled, in one group (two blocks) and in two groups
#    of 4,500 (one block each) give the same output, row for row;
#  - past the first block the engine is sized before the later rows are
#    read: a later row the KV cache can never hold is an error row saying
#    so (sched_add's message), and the run goes on (exit 0), where a group
#    of one block refuses the run before it starts (exit 2, naming
#    VB_KV_BLOCKS), as before.
#
# usage: test_feed_blocks.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT
# rc and err are set by run_capture in tests/lib.sh.
# shellcheck disable=SC2154
set -u
vb=$1 mpirun=$2 make_model=$3 make_input=$4
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" in.h5 9000 300 --empty-row 8500 || { echo "make_ids_input failed"; exit 1; }

args=(generate --model model --input in.h5 --device cpu --temperature 0.8 --seed 3 --n 2
      --max-new-tokens 4)
run_capture "$vb" "${args[@]}" --output one.h5
check "9,000 rows in one group (two blocks): exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
run_capture "$mpirun" --oversubscribe -np 2 "$vb" "${args[@]}" --output two.h5
check "in two groups of one block: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
"$vb" unpack one.h5 one.jsonl >/dev/null 2>&1
"$vb" unpack two.h5 two.jsonl >/dev/null 2>&1
check "18,000 rows in each" [ "$(wc -l <one.jsonl)" = 18000 ] && [ "$(wc -l <two.jsonl)" = 18000 ]
check "the same rows, token for token" cmp -s one.jsonl two.jsonl
check "the empty row is an error row in both" \
    [ "$(grep -c '"error":"[^"]' one.jsonl)" = 2 ]

# one-token prompts, but row 8,500's 300 words: 4 blocks of 16 hold it
# not; the first block's rows need one
{
    for i in $(seq 0 8999); do
        if [ "$i" = 8500 ]; then
            printf '{"prompt": "%s"}\n' "$(yes word | head -300 | tr '\n' ' ')"
        else
            echo '{"prompt": "<|im_end|>"}'
        fi
    done
} >long.jsonl
"$vb" pack long.jsonl long.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
run_capture env VB_KV_BLOCKS=4 "$vb" generate --model model --input long.h5 --device cpu \
    --temperature 0 --max-new-tokens 1 --output long_out.h5
check "a later row the cache cannot hold: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
"$vb" unpack long_out.h5 long_out.jsonl >/dev/null 2>&1
check "it is an error row naming the cache's 4 blocks" \
    [ "$(grep -c '"error":"[^"]*the cache has 4' long_out.jsonl)" = 1 ]
check "the other 8,999 rows ran" \
    [ "$(grep -c '"finish_reason":"[a-z]*","error":"",' long_out.jsonl)" = 8999 ]
sed -n '8501p' long.jsonl >short.jsonl
"$vb" pack short.jsonl short.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
run_capture env VB_KV_BLOCKS=4 "$vb" generate --model model --input short.h5 --device cpu \
    --temperature 0 --max-new-tokens 1 --output short_out.h5
check "the same row in a one-block group refuses the run (exit 2): $rc" [ "$rc" -eq 2 ]
check "naming VB_KV_BLOCKS" contains "$err" "VB_KV_BLOCKS=4"
summary
