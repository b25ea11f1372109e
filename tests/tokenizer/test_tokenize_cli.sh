#!/usr/bin/env bash
# `voltbatch tokenize` end to end on the tiny model's byte-level BPE
# tokenizer: ids as JSON arrays; --decode gives the text back; --chat uses
# the ChatML template (its ids hold <|im_start|>); a bad line gives an
# error object naming the line, keeps the others, and exit status 2; and,
# when HF tokenizers is importable, the ids equal tokenizers' own.
#
# usage: test_tokenize_cli.sh VOLTBATCH MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$make_model" "$dir/m" >/dev/null || exit 1
printf '%s\n' '"Hello, world! 日本語 🌅"' '{"text": "The capital of France is Paris."}' \
    '"  spaces\tand\nnewlines  "' >"$dir/in.jsonl"

run_capture bash -c "'$vb' tokenize --model '$dir/m' <'$dir/in.jsonl' >'$dir/ids.jsonl'"
check "encode exits 0" [ "$rc" -eq 0 ]
check "one line of ids per input line" [ "$(wc -l <"$dir/ids.jsonl")" -eq 3 ]
check "ids are JSON arrays" bash -c "head -c1 '$dir/ids.jsonl' | grep -q '\['"
run_capture bash -c "'$vb' tokenize --model '$dir/m' --decode <'$dir/ids.jsonl'"
check "decode exits 0" [ "$rc" -eq 0 ]
check "decode gives the text back" [ "$out" = "$(printf '%s\n' '"Hello, world! 日本語 🌅"' \
    '"The capital of France is Paris."' '"  spaces\tand\nnewlines  "')" ]
im_start=$(printf '"<|im_start|>"\n' | "$vb" tokenize --model "$dir/m" | tr -d '[]')
run_capture bash -c "printf '%s\n' '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}' |
    '$vb' tokenize --model '$dir/m' --chat"
check "chat exits 0" [ "$rc" -eq 0 ]
check "chat ids start with <|im_start|> ($im_start)" contains "$out" "[$im_start,"
# the same line without --chat: the error names the option that reads it
# (it said only 'expected a JSON string or an object with "text"')
run_capture bash -c "printf '%s\n' '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}' |
    '$vb' tokenize --model '$dir/m'"
check "messages without --chat: exit 2" [ "$rc" -eq 2 ]
check "messages without --chat: names --chat ($out)" \
    contains "$out" '{"error":"line 1: \"messages\" is a chat prompt: add --chat"}'
run_capture bash -c "printf '%s\n' '\"ok\"' 'not json' '[1, 2' '\"fine\"' | '$vb' tokenize --model '$dir/m'"
check "bad lines: exit 2" [ "$rc" -eq 2 ]
check "bad lines: the others still encoded, lines aligned" [ "$(wc -l <<<"$out")" -eq 4 ]
check "bad lines: error object names the line" contains "$out" '{"error":"line 2: not JSON'
# A UTF-8 byte order mark before the first line is dropped, as pack drops
# it (it was "line 1: not JSON", session 31): the same ids as without.
printf '\xEF\xBB\xBF%s\n' '"Hello, world! 日本語 🌅"' >"$dir/bom.jsonl"
run_capture bash -c "'$vb' tokenize --model '$dir/m' <'$dir/bom.jsonl'"
check "a byte order mark: exit 0 ($err)" [ "$rc" -eq 0 ]
check "a byte order mark: the ids without it" [ "$out" = "$(head -1 "$dir/ids.jsonl")" ]
# A NUL character (\u0000 in JSON) is text (issue 20): it encodes and
# decodes back, inside a string and as the whole string.
printf '%s\n' '"a\u0000b"' '{"text": "\u0000"}' >"$dir/nul.jsonl"
run_capture bash -c "'$vb' tokenize --model '$dir/m' <'$dir/nul.jsonl' >'$dir/nul_ids.jsonl'"
check "NUL: encode exits 0" [ "$rc" -eq 0 ]
run_capture bash -c "'$vb' tokenize --model '$dir/m' --decode <'$dir/nul_ids.jsonl'"
check "NUL: decodes back" [ "$out" = "$(printf '%s\n' '"a\u0000b"' '"\u0000"')" ]
# Invalid UTF-8 (a bad byte, a lone surrogate escape) makes that row an error, not a crash.
printf '"ok"\n"bad \xC3\x28 x"\n"\\ud800 lone"\n{"text": "fine \xff"}\n"end"\n' >"$dir/bad_utf8.jsonl"
run_capture bash -c "'$vb' tokenize --model '$dir/m' <'$dir/bad_utf8.jsonl'"
check "invalid UTF-8: exit 2" [ "$rc" -eq 2 ]
check "invalid UTF-8: one output line per input line" [ "$(wc -l <<<"$out")" -eq 5 ]
check "invalid UTF-8: rows 2-4 are errors naming their line" bash -c \
    "[ \"\$(grep -c '^{\"error\":\"line [234]: ' <<<\"\$1\")\" -eq 3 ]" _ "$out"
check "invalid UTF-8: rows 1 and 5 still encoded" bash -c \
    "[ \"\$(sed -n '1p;5p' <<<\"\$1\" | grep -c '^\[')\" -eq 2 ]" _ "$out"
if python3 -c 'import tokenizers' 2>/dev/null; then
    want=$(python3 - "$dir/m/tokenizer.json" "$dir/in.jsonl" <<'PY'
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
for line in open(sys.argv[2], encoding="utf-8"):
    v = json.loads(line)
    text = v if isinstance(v, str) else v["text"]
    print(json.dumps(t.encode(text).ids, separators=(",", ":")))
PY
)
    check "ids equal Hugging Face tokenizers'" [ "$want" = "$(cat "$dir/ids.jsonl")" ]
else
    echo "note: HF tokenizers not importable; skipped the cross-check"
fi
# An object with both "text" and "messages" is refused, naming the line, as
# pack refuses "prompt" with "messages": --chat took the messages and
# without it the text, the other key dropped without a word.
both='{"text": "a", "messages": [{"role": "user", "content": "b"}]}'
for chat in "" --chat; do
    run_capture bash -c "printf '%s\n' '$both' '\"ok\"' | '$vb' tokenize --model '$dir/m' $chat"
    check "text and messages${chat:+ with $chat}: exit 2" [ "$rc" -eq 2 ]
    check "text and messages${chat:+ with $chat}: names the line ($out)" \
        contains "$out" '{"error":"line 1: has both \"text\" and \"messages\"'
    check "text and messages${chat:+ with $chat}: the next line encoded" [ "$(wc -l <<<"$out")" -eq 2 ]
done
# --decode of an id that tokenizer.json leaves unassigned (its ids need
# not be contiguous; <|im_start|> 357 taken out): refused as any id that is
# not a token, not as "outside the vocabulary (0..358)", which holds 357
cp -r "$dir/m" "$dir/gap"
python3 - "$dir/gap/tokenizer.json" <<'PY' || exit 1
import json, sys
t = json.load(open(sys.argv[1]))
t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] != 357]
json.dump(t, open(sys.argv[1], "w"))
PY
run_capture bash -c "printf '%s\n' '[72, 357]' '[72, 358]' | '$vb' tokenize --model '$dir/gap' --decode"
check "an unassigned id: exit 2" [ "$rc" -eq 2 ]
check "an unassigned id: not a token id ($out)" \
    [ "$out" = "$(printf '%s\n' '{"error":"line 1: element 1 is not a token id of this tokenizer"}' '"H"')" ]
summary
