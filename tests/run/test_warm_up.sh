#!/usr/bin/env bash
# The engine's warm-up steps (src/run/run_warm_up.h) change no row: a run
# with them (VB_WARM_UP=1, on the CPU here; auto takes them on a GPU)
# writes the same completions as a run without (VB_WARM_UP=0), at tp 1
# and tp 2 (the steps are collective), with the prefix cache on and with a
# KV cache small enough that sequences take turns at its blocks, the one
# the warm-up wrote included. The warm-up says what it ran, on the group's
# leader, only when it runs: not with 0 or auto on the CPU, nor by default.
#
# usage: test_warm_up.sh VOLTBATCH MPIRUN MAKE_IDS_INPUT
# rc and err are set by run_capture in tests/lib.sh.
# shellcheck disable=SC2154
set -u
vb=$1 mpirun=$2 make_input=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
# a transformers-made random model whose continuations vary (a stale key
# or value in a reused block would show)
ln -s "$(cd "$(dirname "$TEST_LIB")/forward/fixtures/llama_untied" && pwd)" model || exit 1
"$make_input" in.h5 24 300 || { echo "make_ids_input failed"; exit 1; }

args=(generate --model model --input in.h5 --device cpu --temperature 0.8 --top-p 0.9 --seed 5
      --max-new-tokens 24 --max-batch 8)
said() { grep -c "warm-up: a 15-token prefill and a 1-token decode step (no CUDA graph)" <<<"$err"; }

run_capture env VB_WARM_UP=0 "$vb" "${args[@]}" --output off.h5
check "without the warm-up: exit 0" [ "$rc" -eq 0 ]
check "without the warm-up: no warm-up line" [ "$(said)" -eq 0 ]
run_capture "$vb" "${args[@]}" --output auto.h5
check "by default on the CPU: exit 0" [ "$rc" -eq 0 ]
check "by default on the CPU: no warm-up" [ "$(said)" -eq 0 ]
run_capture env VB_WARM_UP=auto "$vb" "${args[@]}" --output auto2.h5
check "auto on the CPU: exit 0" [ "$rc" -eq 0 ]
check "auto on the CPU: no warm-up" [ "$(said)" -eq 0 ]

run_capture env VB_WARM_UP=1 "$vb" "${args[@]}" --output on.h5
check "with the warm-up: exit 0" [ "$rc" -eq 0 ]
check "with the warm-up: its line, once" [ "$(said)" -eq 1 ]
compare=$(compare_outputs off.h5 on.h5)
check "with the warm-up: the same completions ($compare)" [ "$compare" = "same 24" ]

# 6 blocks of 16 positions: the rows (up to 48 positions) share them and
# every block, the warm-up's first one included, is reused
run_capture env VB_WARM_UP=0 VB_KV_BLOCKS=6 "$vb" "${args[@]}" --output small_off.h5
check "a small cache without the warm-up: exit 0" [ "$rc" -eq 0 ]
run_capture env VB_WARM_UP=1 VB_KV_BLOCKS=6 "$vb" "${args[@]}" --output small_on.h5
check "a small cache with the warm-up: exit 0" [ "$rc" -eq 0 ]
compare=$(compare_outputs small_off.h5 small_on.h5)
check "a small cache: the same completions ($compare)" [ "$compare" = "same 24" ]

run_capture env VB_WARM_UP=1 "$mpirun" -np 2 "$vb" "${args[@]}" --tp 2 --output tp2.h5
check "tp 2 with the warm-up: exit 0" [ "$rc" -eq 0 ]
check "tp 2: the line from the group's leader only" [ "$(said)" -eq 1 ]
run_capture env VB_WARM_UP=0 "$mpirun" -np 2 "$vb" "${args[@]}" --tp 2 --output tp2_off.h5
check "tp 2 without the warm-up: exit 0" [ "$rc" -eq 0 ]
compare=$(compare_outputs tp2_off.h5 tp2.h5)
check "tp 2: the same completions with and without ($compare)" [ "$compare" = "same 24" ]
summary
