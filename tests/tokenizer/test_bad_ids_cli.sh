#!/usr/bin/env bash
# A tokenizer.json with bad ids (issue 23, defect 2) end to end: `voltbatch
# tokenize` exits 2 naming the file and the token (it exited 139 or 134 on a
# negative id, and read 2^32+3 and "7" as 3 and 0), and `mpirun -np 2
# voltbatch generate` on text prompts exits 2 on every rank within the
# deadline instead of corrupting memory and hanging.
#
# usage: test_bad_ids_cli.sh VOLTBATCH MAKE_TINY_MODEL MPIRUN
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
make_model=$2
mpirun=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
if ! command -v python3 >/dev/null; then
    echo "python3 not found: it edits the copies of tokenizer.json; skipping"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$make_model" "$dir/m" >/dev/null || exit 1

# bad NAME PYTHON: a copy of the tiny model whose tokenizer.json has had
# PYTHON applied to it (t is the parsed file).
bad() {
    cp -r "$dir/m" "$dir/$1" || exit 1
    python3 - "$dir/$1/tokenizer.json" "$2" <<'PY' || exit 1
import json, sys
path, edit = sys.argv[1], sys.argv[2]
t = json.load(open(path, encoding="utf-8"))
exec(edit)
json.dump(t, open(path, "w", encoding="utf-8"), ensure_ascii=False)
PY
}
bad neg "t['model']['vocab']['he'] = -1"
bad big "t['model']['vocab']['he'] = 2**32 + 3"
bad str "t['model']['vocab']['he'] = '7'"
bad added "t['added_tokens'][0]['id'] = 2**31 - 1"
bad merge "t['model']['merges'][1] = 'h'"

tokenize() { run_capture timeout 60 bash -c "printf '\"hello\"\n' | '$vb' tokenize --model '$dir/$1'"; }
for case in neg:"'he'" big:"'he'" str:"'he'" added:"'<|endoftext|>'" merge:"merges[1]"; do
    name=${case%%:*} token=${case#*:}
    tokenize "$name"
    check "tokenize, $name: exit 2 (was $rc)" [ "$rc" -eq 2 ]
    check "tokenize, $name: names the token $token" contains "$err" "$token"
    check "tokenize, $name: names tokenizer.json" contains "$err" "$name/tokenizer.json"
    check "tokenize, $name: no ids on stdout" [ -z "$out" ]
done

printf 'hello there\nhow are you\n' >"$dir/p.txt"
"$vb" pack "$dir/p.txt" "$dir/p.h5" >/dev/null 2>&1 || exit 1
# Both ranks load the tokenizer; both must stop with the input error.
run_capture timeout 60 "$mpirun" -np 2 "$vb" generate --device cpu --model "$dir/neg" \
    --input "$dir/p.h5" --output "$dir/out.h5" --tp 2 --max-new-tokens 2
check "generate -np 2, negative id: exit 2, no hang (was $rc)" [ "$rc" -eq 2 ]
# A hung rank outlives the mpirun timeout kills: end those of this run (their
# command line holds this test's own mktemp folder) so none is left behind.
for pid in $(pgrep -f -- "--model $dir/neg"); do kill -9 "$pid" 2>/dev/null; done
check "generate -np 2, negative id: names the token" contains "$err" "'he'"
check "generate -np 2, negative id: no output written" [ ! -e "$dir/out.h5" ]
summary
