#!/usr/bin/env bash
# voltbatch started with stderr (or stdout) closed, as a daemon or a
# `2>&-` in a script leaves it: a file a command opens then takes the
# free descriptor 2, and its warnings were written into that file. unpack
# of a stopped run's output put "voltbatch: warning: ... is incomplete"
# as the first line of the JSON Lines it wrote. Now the standard
# descriptors are opened on /dev/null when closed, before anything else.
# usage: test_closed_stderr.sh VOLTBATCH MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1 make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" m >/dev/null || exit 1
printf '{"prompt":"one","id":"a"}\n{"prompt":"two","id":"b"}\n{"prompt":"three","id":"c"}\n' >in.jsonl
"$vb" pack in.jsonl in.h5 2>/dev/null
"$vb" generate --model m --input in.h5 --output out.h5 --max-new-tokens 3 --seed 1 \
    --device cpu 2>/dev/null
# a stopped run's output: its last row not done
python3 - <<'PY'
import h5py
with h5py.File("out.h5", "a") as f:
    for k in list(f.keys()):
        d, t = f[k][:2], f[k].dtype
        del f[k]
        f.create_dataset(k, data=d, dtype=t)
    f.attrs["complete"] = 0
    f.attrs["rows_done"] = 2
PY
run_capture "$vb" unpack out.h5 open.jsonl
check "unpack with stderr open: warns of the incomplete output" contains "$err" "is incomplete"
"$vb" unpack out.h5 closed.jsonl 2>&-
check "unpack with stderr closed: exit 0" [ $? -eq 0 ]
check "unpack with stderr closed: the file holds the rows only" cmp -s open.jsonl closed.jsonl
check "unpack with stderr closed: no warning in the file" bash -c '! grep -q warning closed.jsonl'
# every line is JSON
run_capture python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' closed.jsonl
check "unpack with stderr closed: every line is JSON ($err)" [ "$rc" -eq 0 ]
# and with stdout closed as well as stderr, pack still works
"$vb" pack in.jsonl in2.h5 >&- 2>&-
check "pack with stdout and stderr closed: exit 0" [ $? -eq 0 ]
"$vb" unpack in2.h5 in2.jsonl >&- 2>&-
check "pack, unpack with both closed: the rows back" [ "$(wc -l <in2.jsonl)" -eq 3 ]
summary
