#!/usr/bin/env bash
# An input that cannot be read when a later block of its rows is (cut off
# after the start: a copy still being made, a full disk, a file replaced):
# generate reads its rows a block of 8,192 at a time as the scheduler's
# waiting line drains (run_feed.c), so this is met mid-run. It is a bad
# input: exit 2 with a message naming the file and the rows, and the rows
# finished before it written to the output (the group stops as on a stop
# signal). Before: run_die, exit 1 and no output (the rows were only in
# the journal). Then, with the input restored, --resume completes the run.
#
# 60,000 rows of 8 tokens (--ignore-eos), the input cut to 200,000 bytes
# once the journal holds some rows.
#
# usage: test_input_cut.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 60000
cp p.h5 whole.h5
opts=(--device cpu --model model --temperature 0 --max-new-tokens 8 --ignore-eos
      --max-model-len 16 --input p.h5 --output out.h5)

"$vb" generate "${opts[@]}" >/dev/null 2>gen.err &
pid=$!
if wait_for_journal out.h5.journal 100000 "$pid" 600 0.1; then
    truncate -s 200000 p.h5
fi
wait "$pid"
gen_rc=$?
msg=$(grep -v "rows done" gen.err | tail -1)
check "the input cut mid-run: exit 2 ($msg)" [ "$gen_rc" -eq 2 ]
check "the message names the file and the rows" \
    grep -qE "reading this group's rows: input rows [0-9]+-[0-9]+ .*p\.h5: .*restore the input, then --resume" gen.err
# row records in the journal (journal.h: "VBJRNL01", then u32 length, u32
# crc, payload; a row's payload starts with 'R')
journal_rows=$(python3 - out.h5.journal <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
at, rows = 8, 0
while at + 8 <= len(data):
    n, _ = struct.unpack_from("<II", data, at)
    if n == 0 or at + 8 + n > len(data):
        break
    rows += data[at + 8:at + 9] == b"R"
    at += 8 + n
print(rows)
PY
)
"$vb" unpack out.h5 cut.jsonl >/dev/null 2>&1
out_rows=$(cat cut.jsonl 2>/dev/null | wc -l)
# shellcheck disable=SC2317 # called through check
every_row() { [ "$out_rows" -gt 0 ] && [ "$out_rows" -lt 60000 ] && [ "$out_rows" -eq "$journal_rows" ]; }
check "the output holds the ${out_rows} rows finished before it (the journal's ${journal_rows})" every_row

cp whole.h5 p.h5
run_capture "$vb" generate "${opts[@]}" --resume
check "--resume with the input restored: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
"$vb" unpack out.h5 all.jsonl >/dev/null 2>&1
check "every row, each with its 8 tokens" [ "$(grep -c \
    '"finish_reason":"length","error":"","prompt_tokens":1,"completion_tokens":8' all.jsonl)" = 60000 ]
summary
