#!/usr/bin/env bash
# `generate --stop` where the decoded text comes late: a tokenizer with a
# ByteFallback decoder (Llama 2, Mistral) decodes a run of <0xNN> tokens only
# when the run ends, so a stop string inside a run that lasts to the row's
# last token was never seen by the matcher (the row came back "length" with
# the stop string in its text). The tiny random model with the SentencePiece
# byte-fallback tokenizer of tests/tokenizer/fuzz_corpus: greedy, its row 1
# is byte tokens only ("xxx"); --stop on its text must cut it, and end the
# row at the token that completes it (the run was decoded only at its end,
# so the row ran on with tokens past the stop in /output_ids).
#
# usage: test_stop_strings.sh VOLTBATCH MAKE_TINY_MODEL SOURCE_ROOT
set -u
vb=$1
make_model=$2
root=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
cp "$root/tests/tokenizer/fuzz_corpus/sentencepiece-bytefallback.json" model/tokenizer.json
# its special tokens: <s> 1, </s> 2 (the Qwen2 ones are not in this vocabulary)
python3 - <<'PY' || exit 1
import json
def edit(name, f):
    d = json.load(open(f"model/{name}"))
    f(d)
    json.dump(d, open(f"model/{name}", "w"))
def tc(d):
    d.update(added_tokens_decoder={}, eos_token="</s>", bos_token="<s>", pad_token=None,
             additional_special_tokens=[], tokenizer_class="LlamaTokenizer")
edit("tokenizer_config.json", tc)
edit("generation_config.json", lambda d: d.update(eos_token_id=2, bos_token_id=1))
edit("config.json", lambda d: d.update(eos_token_id=2, bos_token_id=1))
PY
printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' >p.jsonl
"$vb" pack p.jsonl p.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }

# row ROW of OUT.h5 as "finish_reason|completion|output ids"
row() {
    "$vb" unpack "$2" "$2.jsonl" --overwrite >/dev/null 2>&1 || { echo "unpack failed"; return; }
    python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2])]
print(r["finish_reason"], r["completion"], r["output_ids"], sep="|")' "$2.jsonl" "$1"
}
base=(--device cpu --model model --input p.h5 --temperature 0 --max-new-tokens 3)
run_capture "$vb" generate "${base[@]}" --output ref.h5
check "no --stop: exit 0" [ "$rc" -eq 0 ]
ref=$(row 1 ref.h5)
echo "row 1 without --stop: $ref"
# the case under test: every token a <0xNN> byte token (ids 3-258)
check "row 1 is a run of byte tokens (the case this test needs)" python3 -c '
import sys
ids = eval(sys.argv[1].split("|")[2])
sys.exit(not (ids and all(3 <= i <= 258 for i in ids)))' "$ref"
text=$(cut -d'|' -f2 <<<"$ref")
check "row 1 has text" [ -n "$text" ]

run_capture "$vb" generate "${base[@]}" --stop "${text:0:1}" --output s1.h5
check "--stop its first character: exit 0" [ "$rc" -eq 0 ]
check "--stop its first character: cut before it, finish stop ($(row 1 s1.h5))" \
    [ "$(row 1 s1.h5 | cut -d'|' -f1,2)" = "stop|" ]
# the row ends at the token that completes the stop string, as a decode of
# its ids so far shows it, not when the byte run ends: it ran on to
# --max-new-tokens, the tokens past the stop in /output_ids
ids() { python3 -c 'import sys; print(eval(sys.argv[1].split("|")[2])[:int(sys.argv[2])])' "$ref" "$1"; }
check "--stop its first character: ends at the first token" \
    [ "$(row 1 s1.h5 | cut -d'|' -f3)" = "$(ids 1)" ]
run_capture "$vb" generate "${base[@]}" --stop "${text:0:2}" --output s6.h5
check "--stop its first two characters: cut before them, ends at the second token ($(row 1 s6.h5))" \
    [ "$(row 1 s6.h5)" = "stop||$(ids 2)" ]
run_capture "$vb" generate "${base[@]}" --stop "$text" --stop "${text}zzz" --output s2.h5
check "--stop its whole text, ending at the last token: cut, finish stop ($(row 1 s2.h5))" \
    [ "$(row 1 s2.h5 | cut -d'|' -f1,2)" = "stop|" ]
run_capture "$vb" generate "${base[@]}" --stop "${text}zzz" --output s3.h5
check "--stop past its text: no cut, finish length" [ "$(row 1 s3.h5)" = "$ref" ]
# a special token's text never matches (completions are decoded without
# special tokens): it ran to --max-new-tokens without a word
run_capture "$vb" generate "${base[@]}" --stop "</s>" --output s4.h5
check "--stop </s>: exit 0" [ "$rc" -eq 0 ]
check "--stop </s>: warned that it never matches" \
    contains "$err" "--stop '</s>' is the special token 2, which completions are decoded without: it never matches"
# nor does one that holds a special token's text among other text
# ("<|im_end|>\n" on a chat model): it ran without a word as well
run_capture "$vb" generate "${base[@]}" --stop "</s>x" --output s4b.h5
check "--stop </s>x: warned that it holds the special token" \
    contains "$err" "--stop '</s>x' holds the special token 2 (</s>), which completions are decoded without"
run_capture "$vb" generate "${base[@]}" --stop "${text:0:1}" --output s5.h5
check "--stop of plain text: no such warning" \
    bash -c '! grep -q "never matches" <<<"$1"' _ "$err"
# An eos id that is no special token (generation_config.json may list an
# ordinary token): the whole decode keeps its text in the completion, as
# Hugging Face's decode of /output_ids does; with --stop the stream that
# matches the stop strings dropped it, so a --stop that never matched
# changed the text (row 1 came back "" instead of its first character).
first=$(row 1 ref.h5 | cut -d'|' -f3 | python3 -c 'import sys; print(eval(sys.stdin.read())[0])')
cp -r model model_eos
python3 - "$first" <<'PY' || exit 1
import json, sys
g = json.load(open("model_eos/generation_config.json"))
g["eos_token_id"] = [2, int(sys.argv[1])]
json.dump(g, open("model_eos/generation_config.json", "w"))
PY
eos=(--device cpu --model model_eos --input p.h5 --temperature 0 --max-new-tokens 3)
run_capture "$vb" generate "${eos[@]}" --output e0.h5
check "an ordinary token as eos: exit 0" [ "$rc" -eq 0 ]
check "an ordinary token as eos: row 1 ends at it, its text kept ($(row 1 e0.h5))" \
    [ "$(row 1 e0.h5)" = "stop|${text:0:1}|[$first]" ]
run_capture "$vb" generate "${eos[@]}" --stop zzz --output e1.h5
check "an ordinary token as eos, --stop that never matches: the same row ($(row 1 e1.h5))" \
    [ "$(row 1 e1.h5)" = "$(row 1 e0.h5)" ]
# An id that tokenizer.json leaves unassigned (its ids need not be
# contiguous) decodes to nothing, as in Hugging Face's decode and the
# --stop stream: in the whole decode (no --stop) one such id failed the
# decode, the row's text "" with a warning that the id (inside the
# range it named) was "outside the vocabulary". Sampled rows (the same
# ids with and without the hole: the prompts do not use it); the hole is
# a byte token of row 0's completion.
samp=(--device cpu --input p.h5 --temperature 1.5 --seed 3 --max-new-tokens 30 --ignore-eos)
run_capture "$vb" generate "${samp[@]}" --model model --output h0.h5
prompt_ids=$(printf '%s\n' '"hello world"' '"the quick brown fox"' | "$vb" tokenize --model model)
hole=$(row 0 h0.h5 | cut -d'|' -f3 | python3 -c '
import json, sys
ids = eval(sys.stdin.read())
used = {i for l in sys.argv[1].splitlines() for i in json.loads(l)}
print(next((i for i in ids if 3 <= i <= 258 and i not in used and set(ids) - {i}), ""))' "$prompt_ids")
check "row 0 has a byte token to leave unassigned (the case this test needs)" [ -n "$hole" ]
cp -r model model_hole
python3 - "$hole" <<'PY' || exit 1
import json, sys
t = json.load(open("model_hole/tokenizer.json"))
v = t["model"]["vocab"]
del v[next(k for k, i in v.items() if i == int(sys.argv[1]))]
json.dump(t, open("model_hole/tokenizer.json", "w"))
PY
run_capture "$vb" generate "${samp[@]}" --model model_hole --output h1.h5
check "an unassigned id in a row: exit 0" [ "$rc" -eq 0 ]
check "an unassigned id in a row: no decode warning" \
    bash -c '! grep -q "cannot decode" <<<"$1"' _ "$err"
check "an unassigned id in a row: the same ids" \
    [ "$(row 0 h1.h5 | cut -d'|' -f3)" = "$(row 0 h0.h5 | cut -d'|' -f3)" ]
check "an unassigned id in a row: the text of the others ($(row 0 h1.h5 | cut -d'|' -f2))" \
    [ -n "$(row 0 h1.h5 | cut -d'|' -f2)" ]
run_capture "$vb" generate "${samp[@]}" --model model_hole --stop zzz --output h2.h5
check "an unassigned id in a row: the same text as with --stop" [ "$(row 0 h2.h5)" = "$(row 0 h1.h5)" ]
summary
