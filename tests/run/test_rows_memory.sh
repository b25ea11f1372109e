#!/usr/bin/env bash
# World rank 0 holds where each finished row is, not the row: every row is
# in the journal as it finishes, and the output is written from there a
# block at a time. Rank 0 kept a deep copy of every finished row until the
# end (and the output writer gathered all of them into its columns), so
# its memory grew with the job's output: ~760 MB for 300,000 rows of
# 2.2 KB, ~25 GB for 10 million.
#
# 30,000 rows of 8 tokens with --logprobs 64 (--ignore-eos: the tiny model
# would stop after one), ~4.4 KB a row, against the same job with 3,000
# rows: the run's peak resident memory may exceed the small run's by less
# than a quarter of the output file's size (131 MB; measured 10 MB above,
# and 127 MB before, on the CPU machine). Against a baseline run, not a
# fixed figure: the base differs by machine (CUDA's libraries).
# --max-model-len 16 (a prompt of 1 token and 8 new): past one block of
# rows (8,192) the KV cache is sized by --max-model-len, and the model's
# own length made the larger run's cache ~250 MB bigger than the small
# run's (untouched pages, but resident under meson's MALLOC_PERTURB_).
#
# And a stop, on the first 10,000 rows: SIGTERM once the journal holds
# some rows (8 MB) writes an output
# with every row the journal holds (its records read here), exit 75; the
# --resume then ends with the same rows, byte for byte once unpacked, as
# the run that was never stopped.
#
# usage: test_rows_memory.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 30000
head -n 3000 p.jsonl >small.jsonl
"$vb" pack small.jsonl small.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
# the stop and --resume part runs on the first 10,000 rows (CI's time)
head -n 10000 p.jsonl >mid.jsonl
"$vb" pack mid.jsonl mid.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
opts=(--device cpu --model model --temperature 0 --max-new-tokens 8 --ignore-eos --logprobs 64
      --max-model-len 16)

run_peak "$vb" generate "${opts[@]}" --input small.h5 --output small_out.h5
read -r base_rc base_kib <<<"$out"
check "3,000 rows: exit 0 ($(tail -1 <<<"$err"))" [ "${base_rc:-1}" -eq 0 ]
run_peak "$vb" generate "${opts[@]}" --input p.h5 --output out.h5
read -r gen_rc peak_kib <<<"$out"
check "30,000 rows: exit 0 ($(tail -1 <<<"$err"))" [ "${gen_rc:-1}" -eq 0 ]
out_kib=$(( $(stat -c %s out.h5 2>/dev/null || echo 0) / 1024 ))
# shellcheck disable=SC2317 # called through check
under_quarter() { [ "$out_kib" -gt 100000 ] && [ $(( (${peak_kib:-999999999} - ${base_kib:-0}) * 4 )) -lt "$out_kib" ]; }
check "peak resident memory ${peak_kib:-?} KiB, above the 3,000-row run's ${base_kib:-?} by less than a quarter of the output's ${out_kib} KiB" \
    under_quarter
"$vb" unpack out.h5 whole.jsonl >/dev/null 2>&1
check "every row has its 8 tokens and their logprobs" [ "$(grep -c \
    '"finish_reason":"length","error":"","prompt_tokens":1,"completion_tokens":8,.*"logprobs":\[-' \
    whole.jsonl)" = 30000 ]

# The keys of the journal's row records (journal.h: "VBJRNL01", then u32
# length, u32 crc, payload; a row's payload is 'R', i64 index, i32 sample).
journal_keys() {
    python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
at, keys = 8, set()
while at + 8 <= len(data):
    n, _ = struct.unpack_from("<II", data, at)
    if n == 0 or at + 8 + n > len(data):
        break
    if data[at + 8:at + 9] == b"R":
        keys.add(struct.unpack_from("<qi", data, at + 9))
    at += 8 + n
for k in sorted(keys):
    print(*k)
PY
}

"$vb" generate "${opts[@]}" --input mid.h5 --output stopped.h5 >/dev/null 2>stop.err &
pid=$!
if wait_for_journal stopped.h5.journal 8000000 "$pid" 600 0.1; then
    kill -TERM "$pid"
fi
wait "$pid"
stop_rc=$?
check "SIGTERM mid-run: exit 75 ($(tail -1 stop.err))" [ "$stop_rc" -eq 75 ]
"$vb" unpack stopped.h5 stopped.jsonl >/dev/null 2>&1
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(r["index"], r.get("sample", 0))' stopped.jsonl | sort >stopped.keys
journal_keys stopped.h5.journal | sort >journal.keys
n_stopped=$(wc -l <stopped.keys)
# shellcheck disable=SC2317 # called through check
every_journal_row() { [ "$n_stopped" -gt 0 ] && [ "$n_stopped" -lt 10000 ] && cmp -s stopped.keys journal.keys; }
check "the stopped output holds every row of its journal ($n_stopped rows), each once" \
    every_journal_row
check "and they are the uninterrupted run's rows" \
    [ "$(comm -12 <(sort stopped.jsonl) <(sort whole.jsonl) | wc -l)" = "$n_stopped" ]
run_capture "$vb" generate "${opts[@]}" --input mid.h5 --output stopped.h5 --resume
check "--resume: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
check "and its journal is removed" [ ! -e stopped.h5.journal ]
"$vb" unpack stopped.h5 resumed.jsonl >/dev/null 2>&1
check "the resumed output's rows are the uninterrupted run's" cmp -s resumed.jsonl <(head -n 10000 whole.jsonl)
summary
