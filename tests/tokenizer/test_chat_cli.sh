#!/usr/bin/env bash
# The model's own chat template end to end (issue 20, part 3), on the tiny
# model, whose tokenizer_config.json carries a SmolLM2-style template that
# adds a default system turn when the messages have none:
#   - `tokenize --chat` renders that template (the default system turn is
#     there; its ids equal those of the text jinja2 renders, when jinja2 is
#     importable);
#   - chat_template.jinja beside tokenizer_config.json wins;
#   - --chat-template-kwargs sets template variables (enable_thinking);
#   - a template that does not parse: exit 2 naming the file and line;
#   - a template file that is a FIFO, empty, or a device: exit 2 naming it;
#   - generate: a row the template raises on is an error row naming the
#     template's line, the other rows complete, exit 0.
#
# usage: test_chat_cli.sh VOLTBATCH MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" m >/dev/null || exit 1
user='{"messages": [{"role": "user", "content": "hi"}]}'

run_capture bash -c "printf '%s\n' '$user' | '$vb' tokenize --model m --chat"
check "own template: exit 0" [ "$rc" -eq 0 ]
own=$out
builtin=$(printf '%s\n' "$user" | "$vb" tokenize --model m --chat-template chatml)
check "own template adds its default system turn (the built-in chatml does not)" [ "$own" != "$builtin" ]
# The built-in llama2 format rendered a tool (function, later system)
# message in an assistant position as an assistant turn: the model's own
# words in the prompt. Refused, naming the message.
run_capture bash -c "printf '%s\n' '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"tool\", \"content\": \"42\"}]}' | '$vb' tokenize --model m --chat-template llama2"
check "llama2 built-in, a tool turn: refused (exit $rc)" [ "$rc" -ne 0 ]
check "llama2 built-in, a tool turn: names the message" contains "$err" "message 1 is 'tool'"
run_capture bash -c "printf '%s\n' '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"42\"}, {\"role\": \"user\", \"content\": \"ok\"}]}' | '$vb' tokenize --model m --chat-template llama2"
check "llama2 built-in, user/assistant/user: exit 0" [ "$rc" -eq 0 ]
if python3 -c 'import jinja2' 2>/dev/null; then
    # jinja2 with transformers' settings renders the expected text
    python3 - m >text.json <<'EOF'
import json, sys, jinja2
cfg = json.load(open(sys.argv[1] + "/tokenizer_config.json"))
env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
text = env.from_string(cfg["chat_template"]).render(
    messages=[{"role": "user", "content": "hi"}], add_generation_prompt=True, tools=None, documents=None)
print(json.dumps(text))
EOF
    want=$("$vb" tokenize --model m <text.json)
    check "own template: ids of jinja2's text" [ "$own" = "$want" ]
fi

# chat_template.jinja beside tokenizer_config.json wins; kwargs reach it
printf '%s' "{% for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking is false %}<think>

</think>

{% endif %}{% endif %}" >m/chat_template.jinja
plain=$(printf '%s\n' "$user" | "$vb" tokenize --model m --chat)
check "chat_template.jinja wins over tokenizer_config.json's" [ "$plain" != "$own" ]
run_capture bash -c "printf '%s\n' '$user' | '$vb' tokenize --model m --chat --chat-template-kwargs '{\"enable_thinking\": false}'"
check "--chat-template-kwargs: exit 0" [ "$rc" -eq 0 ]
check "--chat-template-kwargs: enable_thinking=false adds the empty think block" \
    [ "$(tr ',' '\n' <<<"$out" | wc -l)" -gt "$(tr ',' '\n' <<<"$plain" | wc -l)" ]
run_capture bash -c "printf '%s\n' '$user' | '$vb' tokenize --model m --chat --chat-template-kwargs '[1]'"
check "--chat-template-kwargs not an object: exit 2" [ "$rc" -eq 2 ]

# a syntax error is refused at load, naming the file and line
printf 'ok\n{%% if x %%}\nnever closed\n' >m/chat_template.jinja
run_capture bash -c "printf '%s\n' '$user' | '$vb' tokenize --model m --chat"
check "syntax error: tokenize exits 2" [ "$rc" -eq 2 ]
check "syntax error: names the file and line" contains "$err" "chat_template.jinja: line 3"

# A --chat-template that is a FIFO blocked the start-up for good (SIGTERM
# did not end it), and an empty one (or /dev/zero) made every row an error
# row: both refused at load, naming the file (the timeout only guards the
# test against the old hang).
mkfifo fifo.jinja
: >empty.jinja
for t in ./fifo.jinja ./empty.jinja /dev/zero; do
    run_capture bash -c "printf '%s\n' '$user' | timeout -k 5 60 '$vb' tokenize --model m --chat-template $t"
    check "--chat-template $t: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "--chat-template $t: names it and says why" \
        eval 'contains "$err" "$t: not a regular file" || contains "$err" "$t: the chat template is empty"'
done

if ! command -v h5dump >/dev/null; then
    echo "h5dump not found (Debian: hdf5-tools); generate checks skipped"
    summary

fi
printf '%s\n' '{"messages": [{"role": "user", "content": "hello"}]}' \
    '{"messages": [{"role": "tool", "content": "x"}]}' \
    '{"messages": [{"role": "user", "content": "again"}]}' >messages.jsonl
"$vb" pack messages.jsonl in.h5 >/dev/null 2>&1
gen=(--device cpu --model m --input in.h5 --max-new-tokens 3 --seed 1)
run_capture "$vb" generate "${gen[@]}" --output bad.h5
check "generate with a bad template: exit 2" [ "$rc" -eq 2 ]
check "generate with a bad template: names the file and line" contains "$err" "chat_template.jinja: line 3"
printf '%s' "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tool role here') }}{% endif %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}<|im_start|>assistant
" >m/chat_template.jinja
run_capture "$vb" generate "${gen[@]}" --output out.h5
check "a row the template raises on: exit 0" [ "$rc" -eq 0 ]
check "that row is an error row, the others are not" \
    contains "$(h5dump -d /finish_reason out.h5)" "length, error, length"
check "its error names the template line and message" \
    contains "$(h5dump -d /error out.h5)" "chat_template.jinja: line 1: the template raised an error: no tool role here"
# Content that is no string reaches the template, as transformers hands it
# over: a list of {"type": "text"} parts, and null in an assistant turn
# with tool_calls (OpenAI's form). pack refused both lines ("needs string
# content") and generate made such HDF5 rows error rows, while tokenize
# --chat rendered them.
printf '%s' "{% for m in messages %}<|im_start|>{{ m.role }}
{% if m.content is string %}{{ m.content }}{% elif m.content %}{% for p in m.content %}{{ p.text }}{% endfor %}{% endif %}{% if m.tool_calls %}{{ m.tool_calls[0].function.name }}{% endif %}<|im_end|>
{% endfor %}<|im_start|>assistant
" >parts.jinja
printf '%s\n' '{"messages": [{"role": "user", "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "joined"}]}]}' \
    '{"messages": [{"role": "user", "content": "w?"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "get_w", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "22 C"}]}' \
    >parts.jsonl
run_capture "$vb" pack parts.jsonl parts.h5
check "pack: content as parts or null: exit 0 ($err)" [ "$rc" -eq 0 ]
want=$("$vb" tokenize --model m --chat-template ./parts.jinja <parts.jsonl | python3 -c 'import json, sys; print(", ".join(str(len(json.loads(l))) for l in sys.stdin))')
run_capture "$vb" generate --device cpu --model m --max-new-tokens 3 --seed 1 --input parts.h5 \
    --output parts_out.h5 --chat-template ./parts.jinja
check "generate: content as parts or null: exit 0" [ "$rc" -eq 0 ]
check "those rows complete ($(h5dump -d /error parts_out.h5 | grep '(0)'))" \
    contains "$(h5dump -d /finish_reason parts_out.h5)" "length, length"
check "with the prompt tokenize --chat gives ($want)" \
    contains "$(h5dump -d /prompt_tokens parts_out.h5)" "(0): $want"
summary
