#!/usr/bin/env bash
# `voltbatch generate` on the CPU backend runs every quantized format
# (issue #21), at tp 1 and under mpirun at tp 2: the greedy completions
# (--temperature 0) of each fixture's prompts, through the whole pipeline
# (config, quantized loader, scheduler, chunked prefill, sampler, output
# file), must be the token ids transformers produced on the
# numpy-dequantized weights (tests/forward/quant_fixtures, made by
# scripts/make-quant-fixtures; reference.json). Exact ids: the fixtures
# keep every greedy step's top-2 gap >= 1e-4, our logits differ by ~1e-6.
# A fixture named int8_* is a float model run with --quantize int8: its
# reference is transformers on the model's compressed-tensors W8A16 channel
# checkpoint (scripts/make-quantized-checkpoint), dequantized. Also: an
# already quantized model with --quantize int8 is refused (exit 2) before
# anything runs. (The CUDA backend runs these too:
# test_quant_generate_cuda.sh.)
#
# usage: test_quant_generate.sh VOLTBATCH MPIRUN REFERENCE_IDS FIXTURES_DIR MODEL...
set -u
# shellcheck source=/dev/null
. "$TEST_LIB"
vb=$1 mpirun=$2 ref_ids=$3 fixtures=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# quantize=(--quantize int8) for the int8_* fixtures, else ()
set_quantize() { # MODEL
    quantize=()
    case $1 in int8_*) quantize=(--quantize int8) ;; esac
}

generate() { # MODEL TP
    local dir=$fixtures/$1 out=$tmp/$1-tp$2
    local n_new quantize
    set_quantize "$1"
    n_new=$("$ref_ids" new-tokens "$dir/reference.json") || return 1
    "$ref_ids" input "$dir/reference.json" "$out.in.h5" || return 1
    local cmd=("$vb" generate --model "$dir" --input "$out.in.h5" --output "$out.h5"
        --device cpu --tp "$2" --temperature 0 --max-new-tokens "$n_new" "${quantize[@]}")
    if [ "$2" -gt 1 ]; then
        "$mpirun" -np "$2" "${cmd[@]}" >"$out.log" 2>&1 || { cat "$out.log"; return 1; }
    else
        "${cmd[@]}" >"$out.log" 2>&1 || { cat "$out.log"; return 1; }
    fi
    "$vb" unpack "$out.h5" "$out.jsonl" >/dev/null 2>&1 || return 1
    "$ref_ids" check "$dir/reference.json" "$out.jsonl"
}

# inspect names the format it plans memory for: the quantization_config's
# quant_method and a bit width
inspect_names_format() { # MODEL
    local method quantize
    set_quantize "$1"
    if [ ${#quantize[@]} -gt 0 ]; then
        method=--quantize
    else
        method=$(python3 -c 'import json,sys; q=json.load(open(sys.argv[1]))["quantization_config"]; print(q.get("quant_method"))' "$fixtures/$1/config.json") || return 1
    fi
    "$vb" inspect --model "$fixtures/$1" --gpu-memory 16GiB "${quantize[@]}" >"$tmp/$1.inspect" \
        2>&1 || return 1
    grep -q "^weights .*per rank ($method int[48]" "$tmp/$1.inspect"
}

# REFUSED MODEL DEVICE MESSAGE: generate --quantize int8 exits 2 with MESSAGE
refused() {
    local out=$tmp/refused-$1-$2
    "$ref_ids" input "$fixtures/$1/reference.json" "$out.in.h5" || return 1
    "$vb" generate --model "$fixtures/$1" --input "$out.in.h5" --output "$out.h5" \
        --device "$2" --quantize int8 >"$out.log" 2>&1
    local rc=$?
    if [ "$rc" -ne 2 ] || ! grep -q -- "$3" "$out.log" || [ -e "$out.h5" ]; then
        echo "exit $rc"
        cat "$out.log"
        return 1
    fi
}

# TP_CUT MODEL: generate --tp 2 exits 2 naming --tp 1, before any output
# (a *_short_* fixture: its groups end shorter than the others, so halves
# of an input cut a group)
tp_cut() {
    local out=$tmp/cut-$1
    "$ref_ids" input "$fixtures/$1/reference.json" "$out.in.h5" || return 1
    "$mpirun" -np 2 "$vb" generate --model "$fixtures/$1" --input "$out.in.h5" \
        --output "$out.h5" --device cpu --tp 2 >"$out.log" 2>&1
    local rc=$?
    if [ "$rc" -ne 2 ] || ! grep -q -- "keep them whole: 1$" "$out.log" || [ -e "$out.h5" ] ||
        [ -e "$out.h5.journal" ]; then
        echo "exit $rc"
        cat "$out.log"
        return 1
    fi
}

for model in "$@"; do
    check "$model: inspect names the quantized format of the weights" inspect_names_format "$model"
    tps="1 2"
    case $model in *_short_*) tps=1 ;; esac
    for tp in $tps; do
        check "$model tp $tp: generate's greedy ids = transformers on the dequantized weights" \
            generate "$model" "$tp"
    done
    case $model in
    *_short_*) check "$model tp 2: refused before any output (a group cut)" tp_cut "$model" ;;
    esac
done
for model in "$@"; do
    case $model in
    ct_w8a16_channel_sym)
        check "$model: --quantize int8 on a quantized checkpoint is refused (exit 2)" \
            refused "$model" cpu "the checkpoint is already quantized.*drop --quantize"
        ;;
    esac
done
summary
