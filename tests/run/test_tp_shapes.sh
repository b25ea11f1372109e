#!/usr/bin/env bash
# Tensor parallelism at shapes other than powers of two, on the CPU backend:
# a model of 6 heads (3 key/value heads), intermediate 264, vocabulary 384,
# at tp 3 (the heads split, 128 tokens a rank) and tp 6 (key/value heads
# replicated on two ranks each). A row's completion and its logprobs must
# not depend on the batch size or the data-parallel layout at a given --tp
# (DESIGN.md, Reproducibility): at tp 3 and more the sum of the ranks'
# partial rows must be taken in one order whatever the step's size, which
# MPI_Allreduce does not promise (Open MPI picks its algorithm, so its
# order, by the message size).
#
# usage: test_tp_shapes.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
# shellcheck source=../lib.sh
. "$TEST_LIB"

if ! command -v h5dump >/dev/null; then
    echo "h5dump not found (Debian: hdf5-tools); skipping"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model --hidden 96 >/dev/null && "$make_input" in.h5 8 300 || exit 1

# the columns a layout must not change, without the file name line
cols() { h5dump -d /output_ids -d /logprobs -d /top_ids -d /top_logprobs "$1" | tail -n +2; }
sampled=(generate --device cpu --model model --input in.h5 --temperature 0.9 --seed 5
         --max-new-tokens 10 --ignore-eos --logprobs 2)

run_capture "$mpirun" -np 3 "$vb" "${sampled[@]}" --tp 3 --output t3.h5
check "tp 3: exit 0" [ "$rc" -eq 0 ]
run_capture "$mpirun" -np 3 "$vb" "${sampled[@]}" --tp 3 --max-batch 1 --output t3_b1.h5
check "tp 3 --max-batch 1: exit 0" [ "$rc" -eq 0 ]
check "tp 3: --max-batch 1 gives the same ids and logprobs" [ "$(cols t3_b1.h5)" = "$(cols t3.h5)" ]
run_capture "$mpirun" -np 6 "$vb" "${sampled[@]}" --tp 3 --output t3_dp2.h5
check "tp 3 x dp 2: exit 0" [ "$rc" -eq 0 ]
check "tp 3 x dp 2 gives the same ids and logprobs" [ "$(cols t3_dp2.h5)" = "$(cols t3.h5)" ]
run_capture "$mpirun" -np 6 "$vb" "${sampled[@]}" --tp 6 --output t6.h5
check "tp 6 (key/value heads replicated): exit 0" [ "$rc" -eq 0 ]
run_capture "$mpirun" -np 6 "$vb" "${sampled[@]}" --tp 6 --max-batch 2 --output t6_b2.h5
check "tp 6: --max-batch 2 gives the same ids and logprobs" [ "$(cols t6_b2.h5)" = "$(cols t6.h5)" ]
# a --tp the shapes refuse: exit 2 before anything starts, the message
# naming the key/value heads and every --tp that works
run_capture "$mpirun" -np 2 "$vb" "${sampled[@]}" --tp 2 --output t2.h5
check "tp 2 on 3 key/value heads: exit 2" [ "$rc" -eq 2 ]
check "tp 2: names the heads and the --tp values that work" \
    contains "$err" "3 key/value heads neither divide by 2 nor divide it; --tp values that work: 1, 3, 6"
check "tp 2: nothing written" [ ! -e t2.h5 ]
summary
