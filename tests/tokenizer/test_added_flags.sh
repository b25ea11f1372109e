#!/usr/bin/env bash
# Added tokens' flags against Hugging Face tokenizers: our three tokenizer
# files (scripts/make-tokenizer-goldens materialize) with some added tokens
# switched to normalized=true, lstrip or rstrip, encoded by `voltbatch
# tokenize` and by HF `tokenizers` on strings that put those tokens next to
# spaces, combining marks and each other; ids must be equal (tolerance:
# none). normalized=true is the case that differs from raw matching: HF finds
# such a token in the normalised text, as its normalised content (Mistral's
# legacy Prepend makes "</s>" into "\u2581</s>"; NFC joins ">" with U+0338).
# single_word=true is not implemented: loading must fail naming it.
# Skips (77) without python3 + tokenizers or the tokenizer packages.
#
# usage: test_added_flags.sh VOLTBATCH MAKE_TOKENIZER_GOLDENS
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
script=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
if ! python3 -c 'import tokenizers' 2>/dev/null; then
    echo "SKIP: python3 with HF tokenizers is needed (pip install tokenizers)"
    exit 77
fi
src=${VB_TOKENIZER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voltbatch/tokenizers}
mkdir -p "$src" 2>/dev/null || src=$(mktemp -d)
python3 "$script" materialize "$src" || echo "make-tokenizer-goldens materialize failed" >&2
for t in qwen2.5 mistral-sp llama3; do
    if [ ! -f "$src/$t/tokenizer.json" ]; then
        echo "SKIP: the $t tokenizer files could not be assembled (see the packages named above)"
        exit 77
    fi
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Writes $dir/<variant>/ (the files with flags changed), $dir/in.jsonl and
# $dir/<variant>.want (HF ids, one JSON array per line).
python3 - "$src" "$dir" <<'PY' || exit 1
import json, os, shutil, sys
from tokenizers import Tokenizer
src, out = sys.argv[1], sys.argv[2]
VARIANTS = {
    "qwen-flags": ("qwen2.5", {"<tool_call>": {"normalized": True}, "</tool_call>": {"normalized": True},
                               "<|fim_prefix|>": {"normalized": True}, "<|im_end|>": {"lstrip": True},
                               "<|im_start|>": {"rstrip": True}}),
    "sp-flags": ("mistral-sp", {"</s>": {"normalized": True}, "<unk>": {"lstrip": True, "rstrip": True}}),
    "llama3-flags": ("llama3", {"<|eot_id|>": {"normalized": True}, "<|start_header_id|>": {"lstrip": True}}),
    "single-word": ("qwen2.5", {"<|im_end|>": {"single_word": True}}),
}
TEXTS = ["a <tool_call> b", "<tool_call>\u0338 x", "x<tool_call>y</tool_call>z", "\u00e9<tool_call>e\u0301",
         " <|im_end|> end", "hi  \n<|im_end|>\n", "start <|im_start|>   user\n", "<|im_start|><|im_end|>",
         "a </s> b", "a</s>b", "</s>x", "x </s>", "</s></s> a", "  </s>", "  <unk>  mid  <unk>", "<unk>",
         "hello <|eot_id|> there", "<|eot_id|><|eot_id|>", "q  <|start_header_id|>user<|end_header_id|>",
         "<|fim_prefix|>def f():", "plain text with nothing added", ""]
with open(os.path.join(out, "in.jsonl"), "w", encoding="utf-8") as f:
    for t in TEXTS:
        f.write(json.dumps(t) + "\n")
made = 0
for name, (base, flags) in VARIANTS.items():
    if not os.path.exists(os.path.join(src, base, "tokenizer.json")):
        continue
    shutil.copytree(os.path.join(src, base), os.path.join(out, name))
    path = os.path.join(out, name, "tokenizer.json")
    j = json.load(open(path, encoding="utf-8"))
    for a in j["added_tokens"]:
        a.update(flags.get(a["content"], {}))
    json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
    tk = Tokenizer.from_file(path)
    with open(os.path.join(out, name + ".want"), "w") as f:
        for t in TEXTS:
            f.write(json.dumps(tk.encode(t).ids, separators=(",", ":")) + "\n")
    made += 1
sys.exit(0 if made else 3)
PY
case $? in
0) ;;
3) echo "SKIP: no tokenizer files in $src (see tests/tokenizer/README.md)"; exit 77 ;;
*) exit 1 ;;
esac

for v in qwen-flags sp-flags llama3-flags; do
    [ -d "$dir/$v" ] || { echo "note: $v: base tokenizer missing; skipped"; continue; }
    run_capture bash -c "'$vb' tokenize --model '$dir/$v' <'$dir/in.jsonl'"
    check "$v: tokenize exits 0 ($err)" [ "$rc" -eq 0 ]
    if [ "$out" != "$(cat "$dir/$v.want")" ]; then
        diff <(printf '%s\n' "$out") "$dir/$v.want" | head -20
    fi
    check "$v: ids equal HF tokenizers' on $(wc -l <"$dir/in.jsonl") strings" [ "$out" = "$(cat "$dir/$v.want")" ]
done
if [ -d "$dir/single-word" ]; then
    run_capture bash -c "'$vb' tokenize --model '$dir/single-word' <'$dir/in.jsonl'"
    check "single_word=true: load fails" [ "$rc" -ne 0 ]
    check "single_word=true: the error names the flag and the token ($err)" \
        bash -c "grep -q 'single_word' <<<\"\$1\" && grep -q '<|im_end|>' <<<\"\$1\"" _ "$err"
fi
summary
