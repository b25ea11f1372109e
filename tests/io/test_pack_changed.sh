#!/usr/bin/env bash
# pack reads a regular input twice: it counts the rows (and finds whether a
# prompt holds a NUL) so that the columns are made with their final size
# and form, then parses. A file that changes between the two passes
# (rewind_shim.c replaces it as pack returns to its start) is refused,
# never written with rows the columns were not made for: a row more, a row
# fewer, the NUL gone with as many rows. Exit 2 naming the file, no output
# and no OUT.tmp; the same rows unchanged pack.
#
# usage: test_pack_changed.sh VOLTBATCH REWIND_SHIM
set -u
vb=$1
shim=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
python3 - <<'PY'
import json
def w(name, rows):
    with open(name, "w") as f:
        f.write("".join(json.dumps({"prompt": p}) + "\n" for p in rows))
base = [f"p{i}" for i in range(20000)]
w("same.jsonl", base)
w("more.jsonl", base + ["extra"])
w("fewer.jsonl", base[:-1])
w("nul.jsonl", base[:-1] + ["a\u0000b"])
PY
pack_changed() { # IN NOW: pack IN while the shim gives it NOW's contents
    cp "$1" in.jsonl
    rm -f out.h5 out.h5.tmp
    LD_PRELOAD=$shim REWIND_SHIM_PATH=in.jsonl REWIND_SHIM_WITH=$2 run_capture "$vb" pack in.jsonl out.h5
}
pack_changed same.jsonl same.jsonl
check "unchanged: exit 0 ($err)" [ "$rc" -eq 0 ]
check "unchanged: output written" [ -e out.h5 ]
for c in "same.jsonl more.jsonl a row more" "same.jsonl fewer.jsonl a row fewer" \
    "nul.jsonl same.jsonl the NUL gone"; do
    read -r from to what <<<"$c"
    pack_changed "$from" "$to"
    check "$what: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "$what: says the file changed ($err)" contains "$err" "in.jsonl: changed while pack read it"
    check "$what: no output" [ ! -e out.h5 ]
    check "$what: no OUT.tmp" [ ! -e out.h5.tmp ]
done
summary
