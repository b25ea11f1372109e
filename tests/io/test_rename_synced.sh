#!/usr/bin/env bash
# pack and unpack sync OUT.tmp before renaming it over OUT, as generate's
# output does (io/output_writer.c): otherwise a node crash right after
# `pack --overwrite` can leave the rename on disk and not the data, an
# empty OUT in place of the user's old file (XFS, Lustre). Under
# tests/io/unsynced_rename_shim.c a rename of an unsynced *.tmp fails.
# usage: test_rename_synced.sh VOLTBATCH SHIM MAKE_TINY_MODEL
set -u
vb=$1 shim=$2 make_model=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shimmed() { LD_PRELOAD="$shim" SYNC_SHIM_PATH='*.tmp' "$@"; }

printf '{"prompt":"one","id":1}\n{"prompt":"two","id":2}\n' >"$tmp/in.jsonl"
"$vb" pack "$tmp/in.jsonl" "$tmp/old.h5" >/dev/null 2>&1
"$vb" pack "$tmp/in.jsonl" "$tmp/input.h5" >/dev/null 2>&1
run_capture shimmed "$vb" pack "$tmp/in.jsonl" "$tmp/in.h5"
check "pack syncs before the rename (exit $rc: $err)" [ "$rc" -eq 0 ]
run_capture shimmed "$vb" pack --overwrite "$tmp/in.jsonl" "$tmp/old.h5"
check "pack --overwrite syncs before the rename (exit $rc: $err)" [ "$rc" -eq 0 ]
run_capture shimmed "$vb" unpack "$tmp/old.h5" "$tmp/back.jsonl"
check "unpack syncs before the rename (exit $rc: $err)" [ "$rc" -eq 0 ]
check "unpack: the rows back" [ "$(wc -l <"$tmp/back.jsonl" 2>/dev/null)" = 2 ]

# generate's output did already (the shim's own check)
"$make_model" "$tmp/model" >/dev/null
run_capture shimmed "$vb" generate --model "$tmp/model" --input "$tmp/input.h5" \
    --output "$tmp/out.h5" --max-new-tokens 2 --seed 1 --device cpu
check "generate syncs before the rename (exit $rc: $err)" [ "$rc" -eq 0 ]
# and the shim does catch a rename without one
run_capture shimmed python3 -c 'import os, sys; open(sys.argv[1] + ".tmp", "w").write("x"); os.rename(sys.argv[1] + ".tmp", sys.argv[1])' "$tmp/x"
check "the shim fails an unsynced rename" contains "$err" "before an fsync"
summary
