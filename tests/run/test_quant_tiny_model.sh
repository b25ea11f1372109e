#!/usr/bin/env bash
# make_tiny_model --quant (random weight-only quantized projections, the
# models of issue #21's speed runs): each format's checkpoint is what the
# loader takes (inspect names it, its group and its tensors' shapes pass
# the checks) and runs end to end on the CPU backend with finite logits
# (bench's 2 x 8 tokens generated; NaN logits would fail the sampler's
# checks), and a width that no group divides is refused, exit 2.
#
# usage: test_quant_tiny_model.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL
# shellcheck disable=SC2154,SC2016  # rc, out, err: run_capture (tests/lib.sh); the bash -c bodies expand their own $1
set -u
vb=$1 mpirun=$2 make_model=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

for q in awq4:"awq int4, group 32" gptq8:"gptq int8, group 32"; do
    fmt=${q%%:*} want=${q#*:}
    run_capture "$make_model" "$dir/$fmt" --hidden 128 --layers 2 --quant "$fmt"
    check "$fmt: written" [ "$rc" -eq 0 ]
    run_capture "$vb" inspect --model "$dir/$fmt"
    check "$fmt: inspect reads it as $want" \
        bash -c '[ "$1" -eq 0 ] && grep -q "weights .*($2 + fp16)" <<<"$3"' _ "$rc" "$want" "$out"
    run_capture "$mpirun" -np 1 "$vb" bench --model "$dir/$fmt" --device cpu --input-len 16 \
        --output-len 8 --num-prompts 2 --report "$dir/$fmt.json"
    check "$fmt: bench on the CPU backend exits 0" [ "$rc" -eq 0 ]
    check "$fmt: 16 tokens generated" \
        python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["generated_tokens"] != 16)' \
        "$dir/$fmt.json"
done
run_capture "$make_model" "$dir/odd" --hidden 96 --layers 1 --quant awq4
check "widths no group of 32 divides: exit 2, said" \
    bash -c '[ "$1" -eq 2 ] && grep -q "divide into groups of 32" <<<"$2"' _ "$rc" "$err"
summary
