#!/usr/bin/env bash
# pack writes its columns a block of 8192 rows at a time (io/pack_columns.h),
# yet the file is the one a single write of every row made: rows that
# decide a column's existence or type only after blocks are written -- the
# first id, system, max_new_tokens or seed after row 8192, an integer /id
# that meets a string or absent id, a /prompts that meets a NUL -- give the
# columns the schema says (check_pack_columns.py), with no column left
# over from a rewrite, from a regular file (rows counted first: contiguous
# columns) and from a pipe (chunked columns). A bad line deep in the input
# (after blocks were written) is named, exit 2, and leaves no output and no
# OUT.tmp; with --overwrite an existing OUT is kept as it was. A stop
# signal (SIGTERM, SIGHUP) while pack waits for more lines, blocks already
# in OUT.tmp, ends it by that signal with neither OUT nor OUT.tmp left
# (OUT.tmp was left, and the next pack refused to start without
# --overwrite). A NUL that only the last prompt of a regular file holds
# makes the byte form from the first row, leaving no rewritten strings in
# the file.
#
# usage: test_pack_stream.sh VOLTBATCH
set -u
vb=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
python3 - <<'PY'
import json
N = 30000
def w(name, rows):
    with open(name + ".jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
w("late_keys", [dict(prompt=f"p{i} é", id=i if i != 25000 else "s25000",
                     **({"system": "sys"} if i == 17000 else {}),
                     **({"max_new_tokens": i % 100} if i >= 9000 else {}),
                     **({"seed": i} if i == N - 1 else {})) for i in range(N)])
w("id_then_absent", [dict(prompt=f"p{i}", **({"id": i} if i != 20000 else {})) for i in range(N)])
w("first_id_late", [dict(prompt=f"p{i}", **({"id": i} if i >= 10000 else {})) for i in range(N)])
w("int_ids", [dict(prompt=f"p{i}", id=i * 7 - 5) for i in range(N)])
w("nul_late", [dict(prompt=f"p{i}" if i != 20000 else "a\u0000b", id=i) for i in range(N)])
w("nul_first", [dict(prompt=f"p{i}" if i % 9000 else "x\u0000y") for i in range(N)])
w("not_nul", [dict(prompt=f"p{i}" if i != 20000 else "x\\u0000y",
                   **({"note": "\u0000"} if i == 21000 else {})) for i in range(N)])
text = [f"prompt {i} " + "x" * 100 for i in range(N)]
w("nul_last", [dict(prompt=t) for t in text[:-1]] + [dict(prompt="a\u0000b")])
w("nul_row0", [dict(prompt="a\u0000b")] + [dict(prompt=t) for t in text[:-1]])
w("nul_text", [dict(prompt=f"t{i}" if i != 20000 else "a\u0000b") for i in range(N)])
with open("nul_text.txt", "w") as f:
    f.write("".join(f"t{i}\n" if i != 20000 else "a\0b\n" for i in range(N)))
w("messages", [dict(messages=[{"role": "user", "content": f"m{i}\u0000"}],
                    **({"id": "a"} if i > 8200 else {})) for i in range(N)])
PY
for f in late_keys id_then_absent first_id_late int_ids nul_late nul_first not_nul nul_last \
    messages nul_text.txt; do
    in=$f.jsonl
    [ "$f" = nul_text.txt ] && in=$f f=nul_text # checked against its JSON Lines twin
    for how in file pipe; do
        rm -f out.h5
        if [ "$how" = file ]; then
            run_capture "$vb" pack "$in" out.h5
        else
            run_capture bash -c 'cat "$1" | "$2" pack /dev/stdin out.h5' _ "$in" "$vb"
        fi
        check "$f from a $how: exit 0 ($err)" [ "$rc" -eq 0 ]
        run_capture python3 "$here/check_pack_columns.py" "$f.jsonl" out.h5
        check "$f from a $how: the schema's columns ($out$err)" [ "$rc" -eq 0 ]
        check "$f from a $how: no OUT.tmp left" [ ! -e out.h5.tmp ]
    done
done

# A NUL in the last prompt of a regular file: /prompts is the byte form
# from the start (found while the rows are counted), not strings rewritten
# as bytes at the end, which left the strings' text in the file (HDF5 does
# not free a deleted column's heap): no larger than the same rows with the
# NUL first (it was 1.7 times that: 7.8 MB against 4.5 MB).
"$vb" pack nul_last.jsonl last.h5 >/dev/null 2>&1
"$vb" pack nul_row0.jsonl row0.h5 >/dev/null 2>&1
last=$(stat -c %s last.h5) row0=$(stat -c %s row0.h5)
check "NUL in the last row: file $last bytes, within 5% of $row0 (NUL in row 0)" \
    [ $((last * 100)) -le $((row0 * 105)) ]

# a bad line after three blocks were written
python3 -c 'import json
for i in range(30000):
    print("{\"prompt\": \"p\", \"oops" if i == 24999 else json.dumps({"prompt": "p%d" % i}))' >bad.jsonl
for how in file pipe; do
    rm -f out.h5
    if [ "$how" = file ]; then
        run_capture "$vb" pack bad.jsonl out.h5
    else
        run_capture bash -c 'cat bad.jsonl | "$1" pack /dev/stdin out.h5' _ "$vb"
    fi
    check "bad line 25,000 from a $how: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "bad line 25,000 from a $how: named ($err)" contains "$err" ":25000: not valid JSON"
    check "bad line 25,000 from a $how: no output" [ ! -e out.h5 ]
    check "bad line 25,000 from a $how: no OUT.tmp" [ ! -e out.h5.tmp ]
done
echo '{"prompt": "kept"}' >keep.jsonl
"$vb" pack keep.jsonl out.h5 >/dev/null 2>&1
before=$(md5sum <out.h5)
run_capture "$vb" pack bad.jsonl out.h5 --overwrite
check "bad line with --overwrite: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "bad line with --overwrite: the old output kept" [ "$(md5sum <out.h5)" = "$before" ]
check "bad line with --overwrite: no OUT.tmp" [ ! -e out.h5.tmp ]

# stopped by a signal while it waits for lines, two blocks written
for sig in TERM HUP; do
    rm -f out.h5 out.h5.tmp feed.jsonl
    mkfifo feed.jsonl
    python3 -c 'import sys, time
for i in range(20000):
    sys.stdout.write("{\"prompt\": \"p%d\"}\n" % i)
sys.stdout.flush()
time.sleep(300)' >feed.jsonl 2>/dev/null &
    feeder=$!
    "$vb" pack feed.jsonl out.h5 2>/dev/null &
    packer=$!
    for _ in $(seq 600); do
        [ -e out.h5.tmp ] && break
        sleep 0.1
    done
    check "SIG$sig: OUT.tmp made before the signal" [ -e out.h5.tmp ]
    kill -"$sig" "$packer"
    wait "$packer"
    rc=$?
    kill "$feeder" 2>/dev/null
    wait "$feeder" 2>/dev/null
    check "SIG$sig: pack ends by the signal (status $rc)" [ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
    check "SIG$sig: no OUT.tmp left" [ ! -e out.h5.tmp ]
    check "SIG$sig: no output" [ ! -e out.h5 ]
done
summary
