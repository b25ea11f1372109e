#!/usr/bin/env bash
# Prompts holding NUL characters (\u0000 in JSONL) end to end (issue 20):
#   - pack writes them (the byte form of /prompts, io/h5_text.h) and unpack
#     gives the same JSON back; the byte form as h5py writes it reads too;
#   - generate on the CPU backend with the tiny model runs each as a normal
#     row (not an error row) whose prompt_tokens is the number of ids that
#     `voltbatch tokenize` gives the same string, so no NUL cut the prompt
#     short; those ids equal Hugging Face tokenizers' (when importable);
#   - unpack of the output reads it.
#
# usage: test_nul_roundtrip.sh VOLTBATCH MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" m >/dev/null || exit 1

cat >in.jsonl <<'JSONL'
{"prompt": "a\u0000b and more text", "id": "mid"}
{"prompt": "no nul here", "id": "plain"}
{"prompt": "\u0000", "id": "only"}
{"prompt": "tail\u0000\u0000", "id": "tail"}
JSONL
run_capture "$vb" pack in.jsonl in.h5
check "pack: exit 0 ($err)" [ "$rc" -eq 0 ]
run_capture "$vb" unpack in.h5 back.jsonl
check "unpack of the input: exit 0 ($err)" [ "$rc" -eq 0 ]
run_capture python3 - in.jsonl back.jsonl <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if a == b else 1)
PY
check "pack -> unpack: the same prompts, NUL characters included" [ "$rc" -eq 0 ]

# the prompts as tokenize reads them: one JSON string a line
python3 -c 'import json,sys; [print(json.dumps(json.loads(l)["prompt"])) for l in open(sys.argv[1])]' \
    in.jsonl >texts.jsonl
run_capture bash -c "'$vb' tokenize --model m <texts.jsonl >ids.jsonl"
check "tokenize: exit 0" [ "$rc" -eq 0 ]
if python3 -c 'import tokenizers' 2>/dev/null; then
    run_capture python3 - m/tokenizer.json texts.jsonl ids.jsonl <<'PY'
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
want = [t.encode(json.loads(l)).ids for l in open(sys.argv[2])]
got = [json.loads(l) for l in open(sys.argv[3])]
print(want, got)
sys.exit(0 if want == got else 1)
PY
    check "tokenize ids of the NUL prompts equal Hugging Face tokenizers' ($out)" [ "$rc" -eq 0 ]
else
    echo "note: HF tokenizers not importable; skipped the cross-check"
fi

# the byte form as another writer makes it (README.md "Text with NUL characters")
if python3 -c 'import h5py, numpy' 2>/dev/null; then
    python3 - <<'PY'
import h5py, numpy as np
texts = ["x\0y", "", "z"]
with h5py.File("h5py.h5", "w") as f:
    f.create_dataset("prompts", data=[np.frombuffer(s.encode(), np.uint8) for s in texts],
                     dtype=h5py.vlen_dtype(np.uint8))
PY
    run_capture "$vb" unpack h5py.h5 h5py.jsonl
    check "h5py's byte form: unpack reads it ($err)" [ "$(cat h5py.jsonl 2>/dev/null)" = "$(printf '%s\n' \
        '{"prompt":"x\u0000y"}' '{"prompt":""}' '{"prompt":"z"}')" ]
fi

run_capture "$vb" generate --device cpu --model m --input in.h5 --output out.h5 --max-new-tokens 3 --seed 1
check "generate: exit 0 ($err)" [ "$rc" -eq 0 ]
run_capture "$vb" unpack out.h5 out.jsonl
check "unpack of the output: exit 0 ($err)" [ "$rc" -eq 0 ]
run_capture python3 - ids.jsonl out.jsonl <<'PY'
import json, sys
ids = [json.loads(l) for l in open(sys.argv[1])]
rows = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda r: r["index"])
bad = [(r["id"], r["finish_reason"], r["error"], r["prompt_tokens"], len(i))
       for r, i in zip(rows, ids) if r["finish_reason"] == "error" or r["prompt_tokens"] != len(i)]
print(bad)
sys.exit(0 if len(rows) == len(ids) == 4 and not bad else 1)
PY
check "generate: every row ran, prompt_tokens = tokenize's count (bad: $out)" [ "$rc" -eq 0 ]
summary
