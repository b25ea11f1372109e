#!/usr/bin/env bash
# make_tiny_model --quant (random weight-only quantized projections, the
# models of issue #21's speed runs): each format's checkpoint is what the
# loader takes (inspect names it, its group and its tensors' shapes pass
# the checks) and runs end to end on the CPU backend with finite logits
# (bench's 2 x 8 tokens generated; NaN logits would fail the sampler's
# checks), and a width that no group divides is refused, exit 2. Then
# --yarn, the long-context model of issue #19's 64K run.
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
# --yarn (issue #19's long-context runs): rope_scaling in config.json, which
# the loader reads, and a prompt past the original 2,048 positions runs
# under --max-model-len; a factor out of range is refused
run_capture "$make_model" "$dir/yarn" --hidden 64 --layers 1 --yarn 4
check "yarn: written" [ "$rc" -eq 0 ]
run_capture "$vb" inspect --model "$dir/yarn"
check "yarn: inspect reads the scaling" \
    bash -c '[ "$1" -eq 0 ] && grep -q "scaling yarn (factor 4)" <<<"$2"' _ "$rc" "$out"
run_capture "$mpirun" -np 1 "$vb" bench --model "$dir/yarn" --device cpu --input-len 3000 \
    --output-len 2 --num-prompts 1 --max-model-len 8192 --report "$dir/yarn.json"
check "yarn: a 3,000-token prompt runs at --max-model-len 8192" [ "$rc" -eq 0 ]
run_capture "$make_model" "$dir/bad" --yarn 0.5
check "yarn factor 0.5: exit 2, said" \
    bash -c '[ "$1" -eq 2 ] && grep -q "yarn takes a factor" <<<"$2"' _ "$rc" "$err"
summary
