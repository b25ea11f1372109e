#!/usr/bin/env bash
# pack's memory does not grow with its input: it held every parsed row
# (about 140 bytes each plus the text) and wrote the file at the end, so a
# multi-GB JSON Lines file needed that much memory (1M short rows: 163 MB;
# 5M: 714 MB, linear). It now writes each block of 8192 rows as it is
# parsed. 300,000 rows of ~500 bytes (150 MB) may peak above 1,000 such
# rows by less than a quarter of the input (38 MB; it was more than the
# input's size), from a regular file (contiguous columns, rows counted
# first) and from a pipe (chunked columns that grow). Against a small run
# of the same binary, not a fixed figure: the base differs by machine
# (CUDA's libraries). The output is checked to hold every row.
#
# usage: test_pack_memory.sh VOLTBATCH
set -u
vb=$1
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
rows_of() {
    python3 -c 'import sys
pad = "lorem ipsum dolor sit amet " * 17
w = sys.stdout.write
for i in range(int(sys.argv[1])):
    w("{\"id\": \"row-%d\", \"prompt\": \"%d %s\", \"max_new_tokens\": %d}\n" % (i, i, pad, i % 100))' "$1"
}
rows_of 1000 >small.jsonl
rows_of 300000 >big.jsonl
input_kib=$(($(stat -c %s big.jsonl) / 1024))

run_peak "$vb" pack small.jsonl small.h5
read -r base_rc base_kib <<<"$out"
check "1,000 rows: exit 0 ($err)" [ "${base_rc:-1}" -eq 0 ]
for how in file pipe; do
    if [ "$how" = file ]; then
        run_peak "$vb" pack big.jsonl big.h5 --overwrite
    else
        run_peak bash -c 'cat big.jsonl | "$1" pack /dev/stdin big.h5 --overwrite' _ "$vb"
    fi
    read -r big_rc big_kib <<<"$out"
    check "300,000 rows ($input_kib KiB) from a $how: exit 0 ($err)" [ "${big_rc:-1}" -eq 0 ]
    grow=$((${big_kib:-999999999} - ${base_kib:-0}))
    echo "peak: $base_kib KiB for 1,000 rows, $big_kib KiB for 300,000 from a $how (+$grow)"
    check "from a $how: peak memory grows by less than a quarter of the input (+$grow KiB of $input_kib)" \
        [ "$grow" -lt $((input_kib / 4)) ]
    rm -f back.jsonl
    "$vb" unpack big.h5 back.jsonl >/dev/null 2>&1
    check "from a $how: every row in the file" [ "$(wc -l <back.jsonl)" -eq 300000 ]
    check "from a $how: the last row's values" python3 -c 'import json, sys
a, b = (json.loads(open(f).readlines()[-1]) for f in sys.argv[1:])
sys.exit(a != b)' big.jsonl back.jsonl
done
summary
