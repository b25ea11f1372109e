#!/usr/bin/env bash
# Model directories at the edges of what loads, each made here from a tiny
# random model (hidden 64, intermediate 176, 4 heads, vocabulary 384) by
# scripts/make-quantized-checkpoint or a numpy edit, and what voltbatch
# must do with them (defects found by trying to break the tool):
# - GPTQ and compressed-tensors checkpoints whose group size (32) does not
#   divide down_proj's 176 input columns load at --tp 1 (the last group is
#   shorter; they used to be refused with "use --tp 1") and give the greedy
#   ids of scripts/dequantize-reference's fp32 decoding of the same files
#   (numpy, from each format's published definition); at --tp 2, whose
#   halves of 88 columns cut a group, generate exits 2 naming --tp 1 before
#   an output or journal exists (it used to fail while loading, exit 1,
#   leaving a journal that refused the corrected rerun);
# - a GPTQ checkpoint declaring desc_act whose g_idx is in column order runs
#   at --tp 2 with groups of 16 cut by the split (act order's path), where
#   checking had accepted it and loading refused it;
# - --quantize int8 of a checkpoint with a NaN weight gives the NaN error
#   rows of the float model (it used to clamp the NaN into range: plausible
#   text from a broken checkpoint);
# - quantized tensors in a directory whose config.json has no
#   quantization_config are named as such (the message named only the
#   missing float weight), and a float weight stored beside a projection's
#   quantized tensors is refused as ambiguous (it was ignored);
# - a chat_template that is neither a string nor a list is named as such
#   by a --chat run (it used to read as "the model has no chat template").
#
# usage: test_checkpoint_edges.sh VOLTBATCH MAKE_TINY_MODEL MPIRUN SCRIPTS_DIR
set -u
# shellcheck source=../lib.sh
. "$TEST_LIB"
vb=$1 make_tiny=$2 mpirun=$3 scripts=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! python3 -c 'import numpy' 2>/dev/null; then
    echo "SKIP: numpy is not installed"
    exit 77
fi

"$make_tiny" "$tmp/base" >/dev/null || { echo "make_tiny_model failed"; exit 1; }
printf '{"prompt":"Hello world"}\n{"prompt":"The capital of France is"}\n' >"$tmp/p.jsonl"
"$vb" pack "$tmp/p.jsonl" "$tmp/p.h5" >/dev/null 2>&1 || { echo "pack failed"; exit 1; }

# gen MODEL OUT [ARGS...]: greedy completions of p.h5 into OUT.jsonl; $rc
gen() { # (run_capture sets $out: the name here is dst)
    local model=$1 dst=$2
    shift 2
    run_capture "$vb" generate --model "$model" --input "$tmp/p.h5" --output "$dst.h5" \
        --device cpu --temperature 0 --max-new-tokens 12 "$@"
    [ "$rc" -eq 0 ] || { echo "  generate exit $rc: $err"; return 1; }
    "$vb" unpack "$dst.h5" "$dst.jsonl" >/dev/null 2>&1
}

# rows of a JSONL output without an error, and with one
n_ok() { python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if not json.loads(l)["error"]))' "$1"; }
n_err() { python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["error"]))' "$1"; }

# the ids of every row
ids_of() { python3 -c 'import json,sys; [print(json.loads(l)["output_ids"]) for l in open(sys.argv[1])]' "$1"; }

short_last_group() { # FORMAT
    local q=$tmp/$1_g32 ref=$tmp/$1_g32_ref
    python3 "$scripts/make-quantized-checkpoint" "$tmp/base" "$q" --format "$1" \
        --group-size 32 >/dev/null || return 1
    python3 "$scripts/dequantize-reference" "$q" "$ref" >/dev/null || return 1
    gen "$q" "$tmp/$1_q" && gen "$ref" "$tmp/$1_ref" || return 1
    [ -s "$tmp/$1_q.jsonl" ] && [ "$(ids_of "$tmp/$1_q.jsonl")" = "$(ids_of "$tmp/$1_ref.jsonl")" ] ||
        { echo "  ids differ from the numpy decoding"; return 1; }
}
check "gptq: a short last group loads at tp 1, ids of the numpy decoding" short_last_group gptq
check "compressed-tensors: the same" short_last_group ct

cut_group_refused_early() {
    run_capture "$mpirun" -np 2 "$vb" generate --model "$tmp/gptq_g32" --input "$tmp/p.h5" \
        --output "$tmp/cut.h5" --device cpu --tp 2 --max-new-tokens 4
    [ "$rc" -eq 2 ] || { echo "  exit $rc: $err"; return 1; }
    contains "$err" "down_proj" && contains "$err" "keep them whole: 1" || { echo "  $err"; return 1; }
    [ ! -e "$tmp/cut.h5" ] && [ ! -e "$tmp/cut.h5.journal" ] || { echo "  files left"; return 1; }
}
check "gptq: --tp 2 cutting a group exits 2 before any output" cut_group_refused_early

desc_act_in_order_tp2() {
    local q=$tmp/gptq_g16_da
    python3 "$scripts/make-quantized-checkpoint" "$tmp/base" "$q" --format gptq \
        --group-size 16 >/dev/null || return 1
    python3 - "$q/config.json" <<'EOF' || return 1
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization_config"]["desc_act"] = True
json.dump(c, open(sys.argv[1], "w"))
EOF
    run_capture "$mpirun" -np 2 "$vb" generate --model "$q" --input "$tmp/p.h5" \
        --output "$tmp/da.h5" --device cpu --tp 2 --temperature 0 --max-new-tokens 8
    [ "$rc" -eq 0 ] || { echo "  exit $rc: $err"; return 1; }
    "$vb" unpack "$tmp/da.h5" "$tmp/da.jsonl" >/dev/null 2>&1 || return 1
    [ "$(n_ok "$tmp/da.jsonl")" -eq 2 ] || { cat "$tmp/da.jsonl"; return 1; }
}
check "gptq: desc_act with g_idx in order runs at tp 2 (groups cut)" desc_act_in_order_tp2

no_quantization_config() {
    local m=$tmp/noqc
    cp -r "$tmp/gptq_g32" "$m" || return 1
    python3 - "$m/config.json" <<'EOF' || return 1
import json, sys
c = json.load(open(sys.argv[1]))
del c["quantization_config"]
json.dump(c, open(sys.argv[1], "w"))
EOF
    run_capture "$vb" inspect --model "$m" --check-weights
    [ "$rc" -eq 2 ] && contains "$err" "q_proj.qweight" && contains "$err" '"quantization_config"' ||
        { echo "  exit $rc: $err"; return 1; }
}
check "quantized tensors without a quantization_config: the message says so" no_quantization_config

float_beside_quantized() {
    local m=$tmp/both
    cp -r "$tmp/gptq_g32" "$m" || return 1
    # layer 0's float down_proj (the base model's) in a second shard beside
    # its quantized tensors, the two files joined by an index
    python3 - "$tmp/base/model.safetensors" "$m" <<'EOF' || return 1
import json, os, struct, sys
src, d = sys.argv[1], sys.argv[2]
def header(path):
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    return n, json.loads(f.read(n))
n, h = header(src)
name = "model.layers.0.mlp.down_proj.weight"
t = h[name]
raw = open(src, "rb").read()
data = raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]
hdr = json.dumps({name: {"dtype": t["dtype"], "shape": t["shape"],
                         "data_offsets": [0, len(data)]}}).encode()
hdr += b" " * (-len(hdr) % 8)
one, two = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
open(os.path.join(d, two), "wb").write(struct.pack("<Q", len(hdr)) + hdr + data)
os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, one))
wm = {k: one for k in header(os.path.join(d, one))[1] if k != "__metadata__"}
wm[name] = two
json.dump({"metadata": {}, "weight_map": wm},
          open(os.path.join(d, "model.safetensors.index.json"), "w"))
EOF
    run_capture "$vb" inspect --model "$m" --check-weights
    [ "$rc" -eq 2 ] && contains "$err" "down_proj.weight" && contains "$err" "ambiguous" ||
        { echo "  exit $rc: $err"; return 1; }
}
check "a float weight beside its quantized tensors is refused by name" float_beside_quantized

int8_keeps_nan() {
    local m=$tmp/nan
    cp -r "$tmp/base" "$m" || return 1
    # one weight of down_proj set to NaN in place: the header says where
    python3 - "$m/model.safetensors" <<'EOF' || return 1
import json, struct, sys
import numpy as np
p = sys.argv[1]
raw = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
t = h["model.layers.0.mlp.down_proj.weight"]
size = {"F32": 4, "F16": 2, "BF16": 2}[t["dtype"]]
at = 8 + n + t["data_offsets"][0] + size * 5
nan = {"F32": np.float32("nan").tobytes(), "F16": np.float16("nan").tobytes(),
       "BF16": np.float32("nan").tobytes()[2:]}[t["dtype"]]
raw[at:at + size] = nan
open(p, "wb").write(raw)
EOF
    run_capture "$vb" generate --model "$m" --input "$tmp/p.h5" --output "$tmp/nan.h5" \
        --device cpu --temperature 0 --max-new-tokens 4 --quantize int8
    "$vb" unpack "$tmp/nan.h5" "$tmp/nan.jsonl" >/dev/null 2>&1 || { echo "  exit $rc: $err"; return 1; }
    [ "$(n_err "$tmp/nan.jsonl")" -eq 2 ] && [ "$(grep -c 'NaN or Inf' "$tmp/nan.jsonl")" -eq 2 ] ||
        { cat "$tmp/nan.jsonl"; return 1; }
}
check "--quantize int8 keeps a NaN weight's NaN (error rows)" int8_keeps_nan

chat_template_not_string() {
    local m=$tmp/ct5
    cp -r "$tmp/base" "$m" || return 1
    python3 - "$m/tokenizer_config.json" <<'EOF' || return 1
import json, os, sys
p = sys.argv[1]
c = json.load(open(p)) if os.path.exists(p) else {}
c["chat_template"] = 5
json.dump(c, open(p, "w"))
EOF
    printf '{"messages":[{"role":"user","content":"hi"}]}\n' >"$tmp/chat.jsonl"
    "$vb" pack "$tmp/chat.jsonl" "$tmp/chat.h5" >/dev/null 2>&1 || return 1
    run_capture "$vb" generate --model "$m" --input "$tmp/chat.h5" --output "$tmp/chat_out.h5" \
        --device cpu --max-new-tokens 4 --chat
    [ "$rc" -eq 2 ] && contains "$err" "chat_template is neither a string nor a list" ||
        { echo "  exit $rc: $err"; return 1; }
}
check "a chat_template that is a number is named as such" chat_template_not_string

summary
