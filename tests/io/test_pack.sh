#!/usr/bin/env bash
# pack / unpack through the voltbatch binary: JSONL round trip lossless for
# 100,000 rows with unicode and empty optional fields (prompt and messages
# kinds), plain text, a byte order mark, errors that name the line, refusal
# to overwrite, unpack of a FIFO, a dataset unpack leaves out said, and
# h5dump reading what pack writes. Needs python3 for the data and the
# comparison (skipped, exit 77, without it).
set -u
vb=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 "$here/make_jsonl.py" 100000 >"$tmp/in.jsonl"
run_capture "$vb" pack "$tmp/in.jsonl" "$tmp/in.h5"
check "pack 100k rows exits 0" [ "$rc" -eq 0 ]
run_capture "$vb" unpack "$tmp/in.h5" "$tmp/back.jsonl"
check "unpack exits 0" [ "$rc" -eq 0 ]
run_capture python3 "$here/compare_jsonl.py" "$tmp/in.jsonl" "$tmp/back.jsonl"
check "100k rows round trip losslessly ($out$err)" [ "$rc" -eq 0 ]

python3 "$here/make_jsonl.py" 2000 messages >"$tmp/chat.jsonl"
"$vb" pack "$tmp/chat.jsonl" "$tmp/chat.h5" && "$vb" unpack "$tmp/chat.h5" "$tmp/chat.back.jsonl"
run_capture python3 "$here/compare_jsonl.py" "$tmp/chat.jsonl" "$tmp/chat.back.jsonl"
check "messages round trip losslessly ($out$err)" [ "$rc" -eq 0 ]

printf 'first prompt\r\n\nsecond é\n   \nthird' >"$tmp/plain.txt"
"$vb" pack "$tmp/plain.txt" "$tmp/plain.h5" && "$vb" unpack "$tmp/plain.h5" "$tmp/plain.jsonl"
check "text: one row per non-blank line" [ "$(wc -l <"$tmp/plain.jsonl")" -eq 3 ]
check "text: row content" [ "$(sed -n 2p "$tmp/plain.jsonl")" = '{"prompt":"second é"}' ]

# A UTF-8 byte order mark before the first line is dropped (JSONL and
# text): before, the JSONL file was refused as not JSON, and the text
# file's first prompt began with U+FEFF.
printf '\xef\xbb\xbf{"prompt": "bom"}\n{"prompt": "two"}\n' >"$tmp/bom.jsonl"
printf '\xef\xbb\xbfbom text\nsecond\n' >"$tmp/bom.txt"
for f in bom.jsonl bom.txt; do
    run_capture "$vb" pack "$tmp/$f" "$tmp/$f.h5"
    check "pack $f with a byte order mark exits 0 ($err)" [ "$rc" -eq 0 ]
    "$vb" unpack "$tmp/$f.h5" "$tmp/$f.back.jsonl" >/dev/null 2>&1
    check "pack $f: the mark is not in the first prompt" \
        bash -c "head -1 '$tmp/$f.back.jsonl' | grep -q '^{\"prompt\":\"bom'"
done

# A UTF-16 file (its byte order mark) is named as such, JSONL or text
printf '\xff\xfe{\0"\0' >"$tmp/u16.jsonl"
printf '\xfe\xff\0h\0i' >"$tmp/u16.txt"
for f in u16.jsonl u16.txt; do
    run_capture "$vb" pack "$tmp/$f" "$tmp/$f.h5"
    check "pack $f (UTF-16) exits 2 (got $rc)" [ "$rc" -eq 2 ]
    check "pack $f: names UTF-16 ($err)" contains "$err" "UTF-16 byte order mark"
    check "pack $f: nothing written" [ ! -e "$tmp/$f.h5" ]
done

# unpack of a FIFO: refused at once (HDF5 blocked opening it for good)
mkfifo "$tmp/fifo.h5"
run_capture timeout -k 5 60 "$vb" unpack "$tmp/fifo.h5" "$tmp/fifo.jsonl"
check "unpack of a FIFO: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "unpack of a FIFO: says so" contains "$err" "fifo.h5: not a regular file"

if command -v h5dump >/dev/null; then
    for f in in chat plain; do
        h5dump -H "$tmp/$f.h5" >/dev/null 2>&1
        check "h5dump reads $f.h5" [ $? -eq 0 ]
    done
    check "h5dump shows UTF-8 prompts" contains "$(h5dump -d /prompts -c 1 "$tmp/plain.h5")" "H5T_CSET_UTF8"
else
    echo "note: h5dump missing (apt-get install hdf5-tools): its checks skipped"
fi
# A dataset the JSON Lines leave out (a misspelt /max_tokens from another
# writer) is said, as pack says a key it does not read; unpack dropped it
# without a word. h5copy (hdf5-tools) adds one to pack's file.
if command -v h5copy >/dev/null; then
    cp "$tmp/plain.h5" "$tmp/extra.h5"
    h5copy -i "$tmp/plain.h5" -o "$tmp/extra.h5" -s /prompts -d /max_tokens
    run_capture "$vb" unpack "$tmp/extra.h5" "$tmp/extra.jsonl"
    check "unpack with an unread dataset: exit 0 (got $rc)" [ "$rc" -eq 0 ]
    check "unpack names the dataset it leaves out ($err)" \
        contains "$err" "extra.h5: /max_tokens is not a dataset unpack writes"
    check "the rows are written all the same" [ "$(wc -l <"$tmp/extra.jsonl")" -eq 3 ]
    run_capture "$vb" unpack "$tmp/plain.h5" "$tmp/plain2.jsonl"
    check "unpack of pack's file warns about nothing ($err)" [ -z "$err" ]
else
    echo "note: h5copy missing (apt-get install hdf5-tools): the unread-dataset check skipped"
fi
if python3 -c 'import h5py' 2>/dev/null; then
    run_capture python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(len(f['prompts']), f['prompts'][1].decode())" "$tmp/plain.h5"
    check "h5py reads pack's file" [ "$out" = "3 second é" ]
fi

# Files other writers make: h5py with numpy fixed-length bytes ('S'), a
# scalar /system, int64 ids, and vlen int token rows.
if python3 -c 'import h5py, numpy' 2>/dev/null; then
    python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/np.h5", "w") as f:
    f["prompts"] = np.array([b"alpha", b"beta gamma", b"d"], dtype="S12")
    f["id"] = np.array([7, 8, 9], dtype=np.int64)
    f["system"] = "Réponds brièvement."
with h5py.File(f"{d}/tok.h5", "w") as f:
    dt = h5py.vlen_dtype(np.dtype("int64"))
    ds = f.create_dataset("input_ids", (2,), dtype=dt)
    ds[0] = np.array([1, 2, 3]); ds[1] = np.array([42])
PY
    run_capture "$vb" unpack "$tmp/np.h5" "$tmp/np.jsonl"
    check "h5py fixed-length file reads ($err)" [ "$rc" -eq 0 ]
    check "h5py fixed-length row" [ "$(sed -n 2p "$tmp/np.jsonl")" = '{"prompt":"beta gamma","id":8,"system":"Réponds brièvement."}' ]
    run_capture "$vb" unpack "$tmp/tok.h5" "$tmp/tok.jsonl"
    check "h5py token rows read" [ "$(cat "$tmp/tok.jsonl")" = '{"input_ids":[1,2,3]}
{"input_ids":[42]}' ]
fi

# Refusing to overwrite, then --overwrite.
run_capture "$vb" pack "$tmp/plain.txt" "$tmp/plain.h5"
check "pack refuses an existing output (exit 2)" [ "$rc" -eq 2 ]
check "pack refusal: one line naming it" one_line "$err"
check "pack refusal names --overwrite" contains "$err" "--overwrite"
run_capture "$vb" unpack "$tmp/plain.h5" "$tmp/plain.jsonl"
check "unpack refuses an existing output" [ "$rc" -eq 2 ]
run_capture "$vb" pack --overwrite "$tmp/plain.txt" "$tmp/plain.h5"
check "pack --overwrite replaces it" [ "$rc" -eq 0 ]
run_capture "$vb" pack "$tmp/plain.txt"
check "pack with one path exits 2" [ "$rc" -eq 2 ]

# Errors name the file and the line.
bad() { # NAME CONTENT EXPECTED-SUBSTRING
    printf '%b' "$2" >"$tmp/bad.jsonl"
    run_capture "$vb" pack --overwrite "$tmp/bad.jsonl" "$tmp/bad.h5"
    check "$1: exit 2" [ "$rc" -eq 2 ]
    check "$1: one line" one_line "$err"
    check "$1: names the line ($err)" contains "$err" "$3"
}
bad "broken JSON" '{"prompt":"a"}\n{"prompt": \n' "bad.jsonl:2:"
bad "no prompt" '{"prompt":"a"}\n\n{"text":"b"}\n' "bad.jsonl:3: needs \"prompt\""
bad "mixed kinds" '{"prompt":"a"}\n{"messages":[{"role":"user","content":"b"}]}\n' "bad.jsonl:2: has \"messages\""
bad "bad messages" '{"messages":[{"role":"user"}]}\n' "bad.jsonl:1: messages[0]"
bad "bad id" '{"prompt":"a","id":[1]}\n' "bad.jsonl:1: \"id\""
bad "bad seed" '{"prompt":"a","seed":-4}\n' "bad.jsonl:1: \"seed\""
bad "bad max_new_tokens" '{"prompt":"a","max_new_tokens":"9"}\n' "bad.jsonl:1: \"max_new_tokens\""
bad "not an object" '["a"]\n' "bad.jsonl:1: expected a JSON object"
bad "empty file" '\n\n' "no prompts"
printf 'ok\nbad \xff byte\n' >"$tmp/bad.txt"
run_capture "$vb" pack --overwrite "$tmp/bad.txt" "$tmp/bad.h5"
check "text invalid UTF-8 names the line ($err)" contains "$err" "bad.txt:2: not valid UTF-8"
run_capture "$vb" pack "$tmp/missing.jsonl" "$tmp/x.h5"
check "missing input: exit 2 naming it" contains "$err" "missing.jsonl"
run_capture "$vb" unpack "$tmp/bad.txt" "$tmp/x.jsonl"
check "unpack of a non-HDF5 file names it" contains "$err" "bad.txt: not an HDF5 file"

# Paths that would fail only after the whole input was read: said first,
# naming the problem (they read "cannot create (directory writable?)",
# "read error" and "cannot rename to ''" before, session 31).
run_capture "$vb" pack "$tmp/plain.txt" "$tmp/nodir/x.h5"
check "pack into a missing directory: exit 2, says so ($err)" \
    eval '[ "$rc" -eq 2 ] && contains "$err" "its directory $tmp/nodir does not exist"'
mkdir -p "$tmp/adir"
run_capture "$vb" pack "$tmp/adir" "$tmp/adir.h5"
check "pack of a directory: exit 2, says so ($err)" \
    eval '[ "$rc" -eq 2 ] && contains "$err" "adir: is a directory"'
for v in 3000000000 -1; do
    printf '{"prompt":"a","max_new_tokens":%s}\n' "$v" >"$tmp/max.jsonl"
    run_capture "$vb" pack "$tmp/max.jsonl" "$tmp/max.h5" --overwrite
    check "pack max_new_tokens $v: exit 2 with the range ($err)" \
        eval '[ "$rc" -eq 2 ] && contains "$err" "must be an integer from 0 to 2147483647"'
done
run_capture "$vb" unpack "$tmp/plain.h5" ""
check "unpack to an empty path: exit 2, says so ($err)" \
    eval '[ "$rc" -eq 2 ] && contains "$err" "the output path is empty"'
# Keys pack does not read, and ids of two types, are said, not dropped or
# changed silently (session 44); a seed past 2^63 - 1 says the limit.
printf '{"prompt":"a","id":1,"max_tokens":5}\n{"prompt":"b","id":"x","other":1}\n' >"$tmp/keys.jsonl"
run_capture "$vb" pack "$tmp/keys.jsonl" "$tmp/keys.h5"
check "pack with an unread key: runs (got $rc)" [ "$rc" -eq 0 ]
check "pack with an unread key: names it and its line ($err)" \
    contains "$err" 'keys.jsonl:1: "max_tokens" is not a key pack reads'
check "pack with an unread key: said once" bash -c '! grep -q "\"other\"" <<<"$1"' _ "$err"
check "pack with integer and string ids: says they are all strings" \
    contains "$err" '"id" is an integer on some lines and a string (or absent) on others'
printf '{"prompt":"a","seed":9223372036854775808}\n' >"$tmp/seed.jsonl"
run_capture "$vb" pack "$tmp/seed.jsonl" "$tmp/seed.h5"
check "pack seed past 2^63 - 1: exit 2, says the limit ($err)" \
    eval '[ "$rc" -eq 2 ] && contains "$err" "integers here must be below 2^63"'
summary
