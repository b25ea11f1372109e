#!/usr/bin/env bash
# Input errors that must be refused with exit 2 before anything is removed
# or started (issue 23):
#   - an output (or its .tmp / .journal, or --report) that is one of the
#     inputs, reached by the same path, ./path, a symlink or a hard link:
#     `generate`, `pack` and `unpack`; the input must survive byte for byte;
#   - an output or report that is a file of the model directory (its
#     checkpoint, config, tokenizer) or the --chat-template file: `generate`
#     and `bench` (--overwrite removed the checkpoint before, session 27);
#   - a file by the output's temporary name (OUT.tmp) without --overwrite:
#     `generate` and `pack` removed or truncated it before (session 27), and
#     `generate --resume` with no output or journal to resume (session 31);
#   - a --report that is the output, its journal or its .tmp; an empty
#     --output or --report; an output that lies in an --input directory or
#     matches an --input glob; --system without chat prompts; a stray
#     argument to `inspect` (session 31);
#   - an output that is not a regular file (a FIFO, a directory): the
#     rename over it put a regular file in place of /dev/full (session 27);
#   - an output or report in a directory that does not exist, a report
#     that is a directory: refused at the start, not after the run;
#   - a model whose config.json cannot work (rms_norm_eps -1) or whose
#     checkpoint's shapes differ from config.json: `generate` exits 2 and
#     leaves no output and no journal behind.
#
# usage: test_input_refusals.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
set -u
vb=$1
make_model=$2
make_input=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" orig.h5 3 50 || { echo "make_ids_input failed"; exit 1; }

gen=(--device cpu --model model --temperature 0 --max-new-tokens 2)

# refused NAME INPUT_FILE ORIGINAL CMD...: CMD exits 2 with one line that
# names the input, and INPUT_FILE is still ORIGINAL's bytes.
refused() {
    local name=$1 input=$2 original=$3
    shift 3
    run_capture "$@"
    check "$name: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "$name: one line ($err)" one_line "$err"
    check "$name: names the input ($err)" contains "$err" "$input"
    check "$name: says it is the same file" contains "$err" "same file"
    check "$name: the input is intact" cmp -s "$input" "$original"
}

fresh() { rm -f in.h5 link.h5 hard.h5 out.h5* && cp orig.h5 in.h5; }
# nothing_at OUT: neither OUT nor its journal or temporary file exists.
nothing_at() { [ ! -e "$1" ] && [ ! -e "$1.journal" ] && [ ! -e "$1.tmp" ]; }

# --- generate ---------------------------------------------------------------
fresh
refused "generate --output = --input" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output in.h5 --overwrite
check "generate --output = --input: both paths named" \
    contains "$err" "the output in.h5 and the input in.h5 are the same file"
fresh
refused "generate --output ./in.h5" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output ./in.h5 --overwrite
check "generate --output ./in.h5: names ./in.h5" contains "$err" "./in.h5"
fresh
ln -s in.h5 link.h5
refused "generate --input through a symlink" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input link.h5 --output in.h5 --overwrite
fresh
ln -s in.h5 link.h5
refused "generate --output through a symlink" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output link.h5 --overwrite
fresh
ln in.h5 hard.h5
refused "generate --output a hard link" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output hard.h5 --overwrite
fresh
cp orig.h5 other.h5
refused "generate --output = second --input" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input other.h5 --input in.h5 --output in.h5 --overwrite
fresh
refused "generate --output = --input with --resume" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output in.h5 --resume
# The names generate writes or removes beside the output.
rm -f out.h5* && cp orig.h5 out.h5.tmp
refused "generate: the output's .tmp is the input" out.h5.tmp orig.h5 \
    "$vb" generate "${gen[@]}" --input out.h5.tmp --output out.h5
rm -f out.h5* && cp orig.h5 out.h5.journal
refused "generate: the output's .journal is the input" out.h5.journal orig.h5 \
    "$vb" generate "${gen[@]}" --input out.h5.journal --output out.h5 --overwrite
fresh
refused "generate --report = --input" in.h5 orig.h5 \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report in.h5
check "generate refusals start nothing (no output, no journal)" nothing_at out.h5
# The model's files and the chat template are inputs too.
cp -r model model_orig
fresh
refused "generate --output = the checkpoint" model/model.safetensors \
    model_orig/model.safetensors \
    "$vb" generate "${gen[@]}" --input in.h5 --output model/model.safetensors --overwrite
check "generate --output = the checkpoint: nothing written beside it" \
    nothing_at model/model.safetensors.tmp
fresh
refused "generate --report = config.json" model/config.json model_orig/config.json \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report model/config.json
fresh
ln -s model/tokenizer.json link.h5
refused "generate --output through a symlink to tokenizer.json" model/tokenizer.json \
    model_orig/tokenizer.json \
    "$vb" generate "${gen[@]}" --input in.h5 --output link.h5 --overwrite
fresh
printf '{{ messages[0]["content"] }}' >tmpl.jinja
cp tmpl.jinja tmpl_orig.jinja
refused "generate --output = the --chat-template file" ./tmpl.jinja tmpl_orig.jinja \
    "$vb" generate "${gen[@]}" --input in.h5 --output tmpl.jinja --overwrite --chat \
    --chat-template ./tmpl.jinja
refused "bench --report = the checkpoint" model/model.safetensors \
    model_orig/model.safetensors \
    "$vb" bench --device cpu --model model --num-prompts 2 --input-len 8 --output-len 2 \
    --report model/model.safetensors
check "bench's refusal starts with its own name ($err)" contains "$err" "voltbatch bench: "
check "generate refusals start nothing (no output, no journal)" nothing_at out.h5
# A file by the output's temporary name is someone's: kept, exit 2.
# kept_tmp NAME TMP CMD...: CMD exits 2 naming TMP, which keeps its bytes.
kept_tmp() {
    local name=$1 tmp=$2
    shift 2
    echo precious >"$tmp"
    run_capture "$@"
    check "$name: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "$name: names $tmp ($err)" contains "$err" "$tmp: already exists"
    check "$name: $tmp kept" [ "$(cat "$tmp")" = precious ]
}
fresh
kept_tmp "generate with OUT.tmp there" out.h5.tmp \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5
check "generate with OUT.tmp there: no journal" [ ! -e out.h5.journal ]
rm -f out.h5.tmp
# --resume with neither an output nor a journal resumes nothing of ours:
# the .tmp is someone's there too (it was removed, session 31)
fresh
kept_tmp "generate --resume with only OUT.tmp there" out.h5.tmp \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --resume
rm -f out.h5.tmp
# The report never replaces the output or its journal (it did, exit 0:
# every completion lost, session 31); empty names are refused at the start
# (the run computed every row, then failed renaming to "", exit 1).
for rep in out.h5 out.h5.journal ./out.h5.tmp; do
    fresh
    run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report "$rep"
    check "generate --report $rep: exit 2 ($err)" [ "$rc" -eq 2 ]
    check "generate --report $rep: says why" contains "$err" "would destroy the completions"
    check "generate --report $rep: nothing written" nothing_at out.h5
done
# nor through a symlink to the output that dangles until the output is
# written (it did, exit 0: the report's JSON in out.h5, the journal removed,
# session 43)
fresh
ln -s out.h5 report.json
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report report.json
check "generate --report report.json -> out.h5: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --report report.json -> out.h5: says why" \
    contains "$err" "would destroy the completions"
check "generate --report report.json -> out.h5: nothing written" nothing_at out.h5
rm -f report.json
fresh
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output ""
check "generate --output '': exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output '': says so" contains "$err" "the output path is empty"
check "generate --output '': no journal" [ ! -e .journal ]
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report ""
check "generate --report '': exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --report '': says so" contains "$err" "the report path is empty"
# An output a --resume would read as an input shard (inside an --input
# directory, or matching an --input glob): the first run was accepted, and
# every resume after a stop then failed, session 31.
rm -rf dd && mkdir dd && cp orig.h5 dd/a.h5
run_capture "$vb" generate "${gen[@]}" --input dd --output dd/out.h5
check "generate --output inside the --input directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output inside the --input directory: says why" \
    contains "$err" "would be read as an input by a --resume: it lies in the --input dd"
check "generate --output inside the --input directory: nothing written" nothing_at dd/out.h5
run_capture "$vb" generate "${gen[@]}" --input 'dd/*.h5' --output ./dd/out.h5
check "generate --output matching the --input glob: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output matching the --input glob: says why" \
    contains "$err" "it matches the --input dd/*.h5"
run_capture "$vb" generate "${gen[@]}" --input 'dd/*' --output dd/out.res
check "generate --input dd/* takes the output's journal: exit 2 ($err)" [ "$rc" -eq 2 ]
run_capture "$vb" generate "${gen[@]}" --input dd --output dd/out.res
check "generate --output in the --input directory but no .h5: runs ($err)" [ "$rc" -eq 0 ]
rm -rf dd
# --system with prompts no chat template renders: refused, not dropped
fresh
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --system "be brief"
check "generate --system without chat prompts: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --system without chat prompts: says why" \
    contains "$err" "--system is the system prompt of chat prompts"
check "generate --system without chat prompts: nothing written" nothing_at out.h5
run_capture "$vb" inspect --model model stray
check "inspect with a stray argument: exit 2 ($err)" [ "$rc" -eq 2 ]
check "inspect with a stray argument: names it" contains "$err" "unexpected argument 'stray'"
# Outputs that are no regular file: never replaced.
fresh
mkfifo fifo.h5 && mkdir outdir
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output fifo.h5 --overwrite
check "generate --output a FIFO: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output a FIFO: says so" contains "$err" "fifo.h5 is not a regular file (a FIFO)"
check "generate --output a FIFO: still a FIFO" [ -p fifo.h5 ]
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output outdir --overwrite
check "generate --output a directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output a directory: says so" contains "$err" "(a directory)"
printf 'hello\n' >one.txt
run_capture "$vb" pack one.txt fifo.h5 --overwrite
check "pack OUT a FIFO: exit 2 ($err)" [ "$rc" -eq 2 ]
check "pack OUT a FIFO: still a FIFO, nothing beside it" \
    eval '[ -p fifo.h5 ] && [ ! -e fifo.h5.tmp ]'
rm -rf fifo.h5 outdir
# What is written at the end is checked at the start (before, a report in
# a missing directory failed the run after all its work: exit 1, and for
# bench the measurement lost).
fresh
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output nodir/out.h5
check "generate --output in a missing directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --output in a missing directory: says so" \
    contains "$err" "the output nodir/out.h5 cannot be written: its directory nodir does not exist"
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report nodir/r.json
check "generate --report in a missing directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --report in a missing directory: says so, before the run" \
    eval 'contains "$err" "the report nodir/r.json cannot be written" && [ ! -e out.h5 ] &&
          [ ! -e out.h5.journal ]'
mkdir repdir
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --report repdir
check "generate --report a directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "generate --report a directory: says so" contains "$err" "the report repdir is a directory"
run_capture "$vb" bench --device cpu --model model --num-prompts 2 --input-len 8 --output-len 4 \
    --report nodir/r.json
check "bench --report in a missing directory: exit 2 ($err)" [ "$rc" -eq 2 ]
check "bench --report in a missing directory: says so" \
    contains "$err" "the report nodir/r.json cannot be written"
rmdir repdir
# Distinct files still run, also a new file in the model's directory.
fresh
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5
check "generate to another file: exit 0 ($err)" [ "$rc" -eq 0 ]
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output model/out.h5
check "generate to a new file in the model's directory: exit 0 ($err)" [ "$rc" -eq 0 ]
rm -f model/out.h5

# --- pack / unpack ----------------------------------------------------------
printf 'hello\nworld\n' >orig.txt
freshp() { rm -f p.txt plink.txt phard.txt p.h5* && cp orig.txt p.txt; }
freshp
refused "pack IN IN --overwrite" p.txt orig.txt "$vb" pack p.txt p.txt --overwrite
freshp
refused "pack IN ./IN --overwrite" p.txt orig.txt "$vb" pack p.txt ./p.txt --overwrite
freshp
ln -s p.txt plink.txt
refused "pack IN symlink-to-IN --overwrite" p.txt orig.txt "$vb" pack p.txt plink.txt --overwrite
freshp
ln -s p.txt plink.txt
refused "pack symlink-to-IN IN --overwrite" p.txt orig.txt "$vb" pack plink.txt p.txt --overwrite
freshp
ln p.txt phard.txt
refused "pack IN hard-link --overwrite" p.txt orig.txt "$vb" pack p.txt phard.txt --overwrite
freshp
refused "pack IN IN (no --overwrite)" p.txt orig.txt "$vb" pack p.txt p.txt
# pack writes OUT.tmp first: an input by that name would be truncated.
rm -f p.h5* && cp orig.txt p.h5.tmp
refused "pack OUT.tmp OUT" p.h5.tmp orig.txt "$vb" pack p.h5.tmp p.h5
freshp
kept_tmp "pack with OUT.tmp there" p.h5.tmp "$vb" pack p.txt p.h5
check "pack with OUT.tmp there: no output" [ ! -e p.h5 ]
freshp
run_capture "$vb" pack p.txt p.h5
check "pack to another file: exit 0 ($err)" [ "$rc" -eq 0 ]
cp p.h5 packed.h5
refused "unpack IN IN --overwrite" p.h5 packed.h5 "$vb" unpack p.h5 p.h5 --overwrite
ln -s p.h5 plink.h5
refused "unpack IN symlink-to-IN --overwrite" p.h5 packed.h5 \
    "$vb" unpack p.h5 plink.h5 --overwrite
# --overwrite replaces OUT and its OUT.tmp, never a file a symlink at
# OUT.tmp points to (pack and unpack wrote through it, exit 0, session 43)
plain_file_alone() { [ -f "$1" ] && [ ! -L "$1" ] && [ ! -e "$1.tmp" ]; }
for cmd in pack unpack; do
    src=p.txt dst=o.h5
    [ $cmd = unpack ] && src=p.h5 dst=o.jsonl
    echo precious >keep.txt
    ln -sf keep.txt $dst.tmp
    run_capture "$vb" $cmd $src $dst --overwrite
    check "$cmd with OUT.tmp a symlink, --overwrite: exit 0 ($err)" [ "$rc" -eq 0 ]
    check "$cmd with OUT.tmp a symlink, --overwrite: the link's target untouched" \
        [ "$(cat keep.txt)" = precious ]
    check "$cmd with OUT.tmp a symlink, --overwrite: OUT a regular file" \
        plain_file_alone $dst
    rm -f keep.txt $dst $dst.tmp
done

# --- model checks at load ---------------------------------------------------
# generate exits 2 naming what is wrong, before any output or journal exists.
fresh
cp -r model m_eps
sed -i 's/"rms_norm_eps": .*/"rms_norm_eps": -1,/' m_eps/config.json
run_capture "$vb" generate --device cpu --model m_eps --input in.h5 --output out.h5
check "rms_norm_eps -1: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "rms_norm_eps -1: names the file and key ($err)" \
    contains "$err" "m_eps/config.json: \"rms_norm_eps\""
check "rms_norm_eps -1: no output, no journal" nothing_at out.h5

# A FIFO in the model directory is refused by name, not waited on: open()
# blocked the start-up for good, and SIGTERM only restarted it (session 43).
# (in.h5 holds token ids, for which a tokenizer that cannot be read is a
# warning and the run goes on: the tokenizer's files are checked with
# `inspect`, which reads them all.)
for f in model.safetensors config.json generation_config.json; do
    fresh
    rm -rf m_fifo && cp -r model m_fifo && rm -f m_fifo/$f && mkfifo m_fifo/$f
    run_capture timeout -k 5 60 "$vb" generate --device cpu --model m_fifo --input in.h5 \
        --output out.h5
    check "model's $f a FIFO: exit 2, no hang (got $rc)" [ "$rc" -eq 2 ]
    check "model's $f a FIFO: names it ($err)" contains "$err" "m_fifo/$f"
    check "model's $f a FIFO: says why" contains "$err" "not a regular file"
    check "model's $f a FIFO: no output, no journal" nothing_at out.h5
done
for f in tokenizer.json tokenizer_config.json; do
    fresh
    rm -rf m_fifo && cp -r model m_fifo && rm -f m_fifo/$f && mkfifo m_fifo/$f
    run_capture timeout -k 5 60 "$vb" generate --device cpu --model m_fifo --input in.h5 \
        --output out.h5
    check "model's $f a FIFO, ids input: runs, no hang (got $rc)" [ "$rc" -eq 0 ]
    check "model's $f a FIFO, ids input: the warning names it ($err)" \
        contains "$err" "m_fifo/$f: "
    check "model's $f a FIFO, ids input: says why" contains "$err" "not a regular file"
done
rm -rf m_fifo
# An input's /system with plain prompts and no --chat is refused, as
# --system is (it was dropped without a word, session 43); with --chat it
# runs.
printf '{"prompt":"hello","system":"You are a pirate."}\n' >sys.jsonl
"$vb" pack sys.jsonl sys.h5 >/dev/null 2>&1
fresh
run_capture "$vb" generate "${gen[@]}" --input sys.h5 --output out.h5
check "/system with plain prompts, no --chat: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "/system with plain prompts, no --chat: names the file and why ($err)" \
    contains "$err" "sys.h5: /system is the system prompt of chat prompts"
check "/system with plain prompts, no --chat: no output, no journal" nothing_at out.h5
fresh
run_capture "$vb" generate "${gen[@]}" --input sys.h5 --output out.h5 --chat
check "/system with plain prompts and --chat: runs (got $rc: $err)" [ "$rc" -eq 0 ]
rm -f sys.jsonl sys.h5 out.h5
# tokenizer_config.json of another JSON type is refused, not read as "no
# chat template, no special tokens" (session 43)
rm -rf m_tc && cp -r model m_tc && echo '[1, 2]' >m_tc/tokenizer_config.json
run_capture sh -c "echo '\"hi\"' | '$vb' tokenize --model m_tc"
check "tokenizer_config.json an array: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "tokenizer_config.json an array: names it ($err)" \
    contains "$err" "m_tc/tokenizer_config.json: not a JSON object"
rm -rf m_tc

fresh
cp -r model m_shape
sed -i 's/"intermediate_size": 176/"intermediate_size": 128/' m_shape/config.json
run_capture "$vb" generate --device cpu --model m_shape --input in.h5 --output out.h5
check "shape mismatch: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "shape mismatch: names the tensor and both shapes ($err)" \
    contains "$err" "'model.layers.0.mlp.gate_proj.weight' has shape [176, 64], config.json implies [128, 64]"
check "shape mismatch: no output, no journal" nothing_at out.h5

# Session 44: options that would be dropped or misrecorded, refused by name.
fresh
printf 'hello world\nthe capital of France is\n' >txt.txt
"$vb" pack txt.txt txt.h5 >/dev/null 2>&1
# usage_refused NAME TEXT CMD...: exit 2, one line containing TEXT, and no
# output, journal or temporary file at out.h5.
usage_refused() {
    local name=$1 text=$2
    shift 2
    run_capture "$@"
    check "$name: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "$name: says why ($err)" contains "$err" "$text"
    check "$name: nothing written" nothing_at out.h5
}
usage_refused "--stop of other bytes than UTF-8" "--stop: not valid UTF-8 text" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --stop $'ab\xff'
usage_refused "--system of other bytes than UTF-8" "--system: not valid UTF-8 text" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat --system $'\xc0\xaf'
usage_refused "--seed ' -1' (strtoull negates it)" "--seed: ' -1' is not a non-negative" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --seed ' -1'
usage_refused "--chat with token ids" "--chat renders text prompts" \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --chat
usage_refused "--chat-template-kwargs without chat prompts" \
    "--chat-template-kwargs sets variables of chat prompts" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat-template-kwargs '{"a": 1}'
usage_refused "--chat-template-kwargs with \"messages\"" '"messages" is the conversation itself' \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat \
    --chat-template-kwargs '{"messages": "x"}'
# the built-in templates read no variables: kwargs were dropped without a
# word, add_generation_prompt: false included (session 46); {} is nothing
usage_refused "--chat-template-kwargs with a built-in template" \
    "the built-in chatml template takes no variables" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat --chat-template chatml \
    --chat-template-kwargs '{"add_generation_prompt": false}'
run_capture "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat --chat-template chatml \
    --chat-template-kwargs '{}'
check "--chat-template-kwargs {} with a built-in template runs (rc $rc: $err)" [ "$rc" -eq 0 ]
rm -f out.h5 out.h5.journal
mkdir $'m\xff' && cp model/* $'m\xff'/
usage_refused "a model directory whose path is not UTF-8" "path is not valid UTF-8" \
    "$vb" generate "${gen[@]}" --model $'m\xff' --input in.h5 --output out.h5
rm -rf $'m\xff'
# A KV cache the settings cannot fit: exit 2, and no journal left behind
# that would refuse the next run with settings that fit (session 44).
usage_refused "a KV cache that does not fit" "not enough cpu memory for the KV cache" \
    "$vb" generate --device cpu --model model --input in.h5 --output out.h5 \
    --max-new-tokens 16777216 --max-model-len 16777216 --ignore-eos
# (nor the memory "left after the weights and activations", nor a smaller
# --max-batched-tokens: the CPU's cache is a fixed share of the node's
# memory, which the step's activations do not come out of)
cpu_advice() {
    contains "$err" "25 % of the node's memory" && ! contains "$err" "gpu-memory" &&
        ! contains "$err" "after the weights" && ! contains "$err" "--max-batched-tokens" &&
        contains "$err" "fewer ranks a node"
}
check "on the CPU, the advice is the CPU's (not --gpu-memory-utilization): $err" cpu_advice
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5
check "after a KV cache that did not fit, the same output runs (got $rc: $err)" [ "$rc" -eq 0 ]
rm -f out.h5
for opt in "--system S" "--chat-template-kwargs {}" "--keep-special"; do
    # shellcheck disable=SC2086 # the option and its value as two words
    run_capture sh -c "echo '\"hi\"' | '$vb' tokenize --model model $opt"
    check "tokenize $opt alone: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "tokenize $opt alone: says what it needs ($err)" contains "$err" "applies to"
done
# --resume compares the --chat-template file and --chat-template-kwargs:
# either renders the prompts otherwise.
printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ tag }}{{ m.content }}<|im_end|>\n{%% endfor %%}<|im_start|>assistant\n' >t.jinja
chat=("${gen[@]}" --input txt.h5 --output out.h5 --chat-template ./t.jinja)
run_capture "$vb" generate "${chat[@]}" --chat-template-kwargs '{"tag": "A "}'
check "a --chat-template file with kwargs: runs (got $rc: $err)" [ "$rc" -eq 0 ]
run_capture "$vb" generate "${chat[@]}" --chat-template-kwargs '{"tag": "B "}' --resume
check "--resume with other --chat-template-kwargs: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "--resume with other --chat-template-kwargs: names them ($err)" \
    contains "$err" 'chat_template_kwargs was {"tag":"A "}, now {"tag":"B "}'
touch -d '2001-02-03 04:05:06' t.jinja
run_capture "$vb" generate "${chat[@]}" --chat-template-kwargs '{ "tag":"A " }' --resume
check "--resume after the template file changed: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "--resume after the template file changed: says so ($err)" \
    contains "$err" "the --chat-template file changed since this output was begun"
check "refused resumes keep the output" [ -e out.h5 ]
rm -f out.h5
# A template file of other bytes than UTF-8: refused at the start naming
# it (each row was an error row naming no file).
printf '\xff\xfe {{ 1 }}' >bad.jinja
usage_refused "a --chat-template file not UTF-8" "bad.jinja: not valid UTF-8 text (byte 1)" \
    "$vb" generate "${gen[@]}" --input txt.h5 --output out.h5 --chat-template ./bad.jinja
# An output that is a symbolic link: the rename replaced the link, not its
# target (as root, /dev/stdout became a regular file).
echo keep >target.jsonl && ln -s target.jsonl link.jsonl
run_capture "$vb" unpack txt.h5 link.jsonl --overwrite
check "unpack --overwrite to a symlink: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "unpack --overwrite to a symlink: says so ($err)" contains "$err" "is a symbolic link"
check "unpack --overwrite to a symlink: the link and its target kept" \
    [ -L link.jsonl ] && [ "$(cat target.jsonl)" = keep ]
ln -s elsewhere.h5 out.h5
usage_refused "generate --output a dangling symlink" "out.h5 is a symbolic link (to elsewhere.h5)" \
    "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --overwrite
check "generate --output a dangling symlink: the link kept" [ -L out.h5 ]
rm -f out.h5 t.jinja bad.jinja txt.txt txt.h5 target.jsonl link.jsonl
# An input check that times out before it opens a file names the limit
# (it read "failed before any file was opened (signal 9)", session 44).
run_capture env VB_INPUT_CHECK_TIMEOUT=0.000001 "$vb" generate "${gen[@]}" --input in.h5 \
    --output out.h5
check "input check past VB_INPUT_CHECK_TIMEOUT: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "input check past VB_INPUT_CHECK_TIMEOUT: names it ($err)" \
    contains "$err" "VB_INPUT_CHECK_TIMEOUT"


# --overwrite keeps the old output until the run really starts: a start-up
# that then fails (here a KV cache the settings cannot fit, exit 2 "nothing
# was started") left neither the old output nor a new one (the old one was
# removed before the check). The model's 32 KiB a position makes 16M
# positions more than a quarter of any node's memory up to 2 TB.
fresh
"$make_model" big_kv --layers 32 --hidden 256 >/dev/null || { echo "make_tiny_model failed"; exit 1; }
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5
check "a first run for --overwrite: exit 0 (got $rc)" [ "$rc" -eq 0 ]
cp out.h5 out.keep
run_capture "$vb" generate --device cpu --model big_kv --input in.h5 --output out.h5 --overwrite \
    --max-model-len 16777216 --max-new-tokens 16777216
check "--overwrite with a KV cache that cannot fit: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "--overwrite with a KV cache that cannot fit: says so ($err)" \
    contains "$err" "not enough cpu memory for the KV cache"
check "--overwrite with a KV cache that cannot fit: the old output kept" cmp -s out.h5 out.keep
check "--overwrite with a KV cache that cannot fit: no journal, no temporary file" \
    [ ! -e out.h5.journal ] && [ ! -e out.h5.tmp ]
run_capture "$vb" generate "${gen[@]}" --input in.h5 --output out.h5 --overwrite --max-new-tokens 3
check "--overwrite that runs: exit 0 (got $rc)" [ "$rc" -eq 0 ]
check "--overwrite that runs: the output replaced" bash -c '[ -f out.h5 ] && ! cmp -s out.h5 out.keep'
check "--overwrite that runs: no journal, no temporary file left" \
    [ ! -e out.h5.journal ] && [ ! -e out.h5.tmp ]
rm -rf big_kv out.keep out.h5

summary
