#!/usr/bin/env bash
# `generate` under mpirun refuses a world size that is not a multiple of
# --tp on every rank, with one message (from rank 0) and exit status 2.
set -u
vb=$1
mpirun=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

run_capture "$mpirun" -np 4 "$vb" generate --model m --input i --output o --tp 3
check "tp 3 on 4 ranks exits 2" [ "$rc" -eq 2 ]
# mpirun adds its own notice; ours must appear once, from rank 0 only.
check "tp 3 on 4 ranks: one message" [ "$(grep -c 'voltbatch generate:' <<<"$err")" -eq 1 ]
check "tp 3 on 4 ranks names the sizes" contains "$err" "world size 4"

summary
