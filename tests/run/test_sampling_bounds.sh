#!/usr/bin/env bash
# Sampling options at the ends of their ranges on the CPU backend: a run
# whose settings the command line takes must finish every row.
# --top-k 16777216 (the option's limit) keeps the whole vocabulary, as
# --top-k <vocabulary size> does; the sampler sized each row's candidates
# by top_k, so 256 rows a step asked 34 GB and the job ended at step 0.
#
# usage: test_sampling_bounds.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
set -u
vb=$1
make_model=$2
make_input=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

if ! command -v h5dump >/dev/null; then
    echo "h5dump not found (Debian: hdf5-tools); skipping"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" in.h5 300 300 >/dev/null || { echo "make_ids_input failed"; exit 1; }
ids() { h5dump -d /output_ids -d /finish_reason "$1" | tail -n +2; }
vocab=$(grep -o '"vocab_size": *[0-9]*' model/config.json | grep -o '[0-9]*$')

sampled=(--device cpu --model model --input in.h5 --max-new-tokens 3 --temperature 1
         --top-p 0.9 --seed 4)
run_capture "$vb" generate "${sampled[@]}" --top-k "$vocab" --output k_vocab.h5
check "--top-k $vocab (the vocabulary): exit 0" [ "$rc" -eq 0 ]
run_capture "$vb" generate "${sampled[@]}" --top-k 16777216 --output k_max.h5
check "--top-k 16777216, 300 rows: exit 0 ($(tail -1 <<<"$err"))" [ "$rc" -eq 0 ]
check "--top-k 16777216 = --top-k $vocab" [ "$(ids k_max.h5)" = "$(ids k_vocab.h5)" ]
# The warning for a truncation option at temperature 0 named a per-row
# /temperature column that inputs do not have.
run_capture "$vb" generate --device cpu --model model --input in.h5 --max-new-tokens 1 \
    --temperature 0 --top-p 0.5 --output greedy.h5
check "--top-p at --temperature 0: exit 0" [ "$rc" -eq 0 ]
check "--top-p at --temperature 0: warned, every row greedy" \
    contains "$err" "--top-p has no effect at temperature 0 (greedy): every row is greedy"
check "--top-p at --temperature 0: no /temperature column named" \
    bash -c '! grep -q "/temperature" <<<"$1"' _ "$err"
# every truncation option given is named, not only the first (--min-p
# after --top-p was dropped without a word)
run_capture "$vb" generate --device cpu --model model --input in.h5 --max-new-tokens 1 \
    --temperature 0 --top-p 0.5 --top-k 3 --min-p 0.1 --output greedy3.h5
check "three options at --temperature 0: exit 0" [ "$rc" -eq 0 ]
check "three options at --temperature 0: all named ($(grep warning <<<"$err"))" \
    contains "$err" "--top-p, --top-k, --min-p have no effect at temperature 0 (greedy)"
# --n K at temperature 0 makes K copies of one greedy completion
# (transformers refuses it); they were made without a word
run_capture "$vb" generate --device cpu --model model --input in.h5 --max-new-tokens 1 \
    --temperature 0 --n 2 --output greedy_n.h5
check "--n 2 at --temperature 0: exit 0" [ "$rc" -eq 0 ]
check "--n 2 at --temperature 0: warned that the samples are identical" \
    contains "$err" "--n 2 at temperature 0 (greedy): the 2 samples of each row are identical"
run_capture "$vb" generate --device cpu --model model --input in.h5 --max-new-tokens 1 \
    --temperature 0.5 --n 2 --output sampled_n.h5
check "--n 2 at --temperature 0.5: no such warning" \
    bash -c '! grep -q "samples of each row are identical" <<<"$1"' _ "$err"
# generation_config.json's min_p is a sampling default like its top_p
# (transformers applies it with do_sample); it was left unread, so the
# model's min_p was dropped without a word
# A copy of the tiny model, NAME, whose generation_config.json is
# updated by the Python keywords KW (keys set to None are removed).
gen_model() {
    cp -r model "$1" && python3 -c '
import json, sys
p = sys.argv[1] + "/generation_config.json"
d = json.load(open(p))
d.update(eval("dict(" + sys.argv[2] + ")"))
json.dump({k: v for k, v in d.items() if v is not None}, open(p, "w"))' "$1" "$2" || exit 1
}
gen_model model_minp "min_p=0.3"
attr() { h5dump -a "/$2" "$1" | grep -o '(0): .*' | cut -d' ' -f2; }
few=(--device cpu --input in.h5 --max-new-tokens 3 --seed 4)
run_capture "$vb" generate "${few[@]}" --model model_minp --output gen_minp.h5 \
    --report gen_minp.json
check "generation_config.json min_p: exit 0" [ "$rc" -eq 0 ]
# the report's settings hold null for what the model decided; its
# sampling says what was in effect, as the output's attributes do
check "the report's sampling: generation_config.json's values ($(tr -d ' \n' <gen_minp.json |
    grep -o '"sampling":{[^}]*}'))" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sampling"]
want = dict(temperature=0.7, top_k=20, top_p=0.8, min_p=0.3, repetition_penalty=1.05,
            frequency_penalty=0.0, presence_penalty=0.0, max_new_tokens=3)
sys.exit(s != want)' gen_minp.json
check "generation_config.json min_p: recorded as in effect ($(attr gen_minp.h5 min_p))" \
    [ "$(attr gen_minp.h5 min_p)" = 0.3 ]
run_capture "$vb" generate "${few[@]}" --model model --min-p 0.3 --output cli_minp.h5
check "generation_config.json min_p 0.3 = --min-p 0.3" [ "$(ids gen_minp.h5)" = "$(ids cli_minp.h5)" ]
# README counts --max-new-tokens among the sampling settings: without
# it, the default (256) the rows were made with is recorded as the
# sampling in effect is (it was recorded nowhere); --max-model-len 8
# keeps the run short (each row still stops at the context's end)
"$make_input" one.h5 1 300 >/dev/null || { echo "make_ids_input failed"; exit 1; }
run_capture "$vb" generate --device cpu --model model --input one.h5 --max-model-len 8 \
    --output default_max.h5 --report default_max.json
check "no --max-new-tokens: exit 0" [ "$rc" -eq 0 ]
check "no --max-new-tokens: the attribute max_new_tokens is the default 256 ($(attr default_max.h5 max_new_tokens))" \
    [ "$(attr default_max.h5 max_new_tokens)" = 256 ]
check "no --max-new-tokens: the report's sampling says 256" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["sampling"]["max_new_tokens"] != 256)' default_max.json
# generation_config.json's max_new_tokens is the rows' budget without
# --max-new-tokens (transformers and vLLM take it; Qwen2.5's base models
# ship 2048); 256 had stood in for it without a word
gen_model model_maxnew "max_new_tokens=2"
run_capture "$vb" generate --device cpu --model model_maxnew --input in.h5 --ignore-eos \
    --output gen_maxnew.h5 --report gen_maxnew.json
check "generation_config.json max_new_tokens 2: exit 0" [ "$rc" -eq 0 ]
check "generation_config.json max_new_tokens 2: every row 2 tokens" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(j["sampling"]["max_new_tokens"] != 2 or j["generated_tokens"] != 2 * j["rows_done"])' \
    gen_maxnew.json
check "generation_config.json max_new_tokens 2: the attribute says 2" \
    [ "$(attr gen_maxnew.h5 max_new_tokens)" = 2 ]
run_capture "$vb" generate --device cpu --model model_maxnew --input in.h5 --ignore-eos \
    --max-new-tokens 3 --output cli_maxnew.h5 --report cli_maxnew.json
check "--max-new-tokens 3 over generation_config.json's 2" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(j["generated_tokens"] != 3 * j["rows_done"])' cli_maxnew.json
# generation_config.json's top_k (top_p, min_p) apply whenever the run
# samples, as transformers' generate() and vLLM apply them: a model
# without do_sample run at --temperature 1 sampled from the whole
# vocabulary. Its top_k 1 makes the sampled rows the greedy ones.
gen_model model_nods "do_sample=False, top_k=1, top_p=None"
run_capture "$vb" generate "${few[@]}" --model model_nods --temperature 0 --output nods_greedy.h5
run_capture "$vb" generate "${few[@]}" --model model_nods --temperature 1 --output nods_t1.h5 \
    --report nods_t1.json
check "no do_sample, --temperature 1: exit 0" [ "$rc" -eq 0 ]
check "no do_sample, --temperature 1: the file's top_k 1 in effect" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["sampling"]["top_k"] != 1)' nods_t1.json
check "no do_sample, --temperature 1, the file's top_k 1: the greedy rows" \
    [ "$(ids nods_t1.h5)" = "$(ids nods_greedy.h5)" ]
# generation_config.json keys transformers applies and voltbatch does not
# (typical_p, no_repeat_ngram_size, ...) were dropped without a word
gen_model model_typical "typical_p=0.5, no_repeat_ngram_size=3, num_beams=1"
run_capture "$vb" generate --device cpu --model model_typical --input one.h5 \
    --max-new-tokens 1 --output typical.h5
check "generation_config.json typical_p: exit 0" [ "$rc" -eq 0 ]
check "generation_config.json typical_p, no_repeat_ngram_size: named ($(grep warning <<<"$err" | grep typical))" \
    contains "$err" "generation_config.json sets typical_p, no_repeat_ngram_size, which transformers' generate() applies and voltbatch does not"
# top-p without top-k draws from the sampler's 256 best tokens a rank
# (sampler.h); a nucleus larger than that (here: temperature 100 on the
# tiny model's 384 tokens) was cut without a word. The run counts such
# draws, warns and reports them; with a top-k beside it nothing is cut.
flat=(--device cpu --model model --input one.h5 --max-new-tokens 4 --temperature 100
      --top-p 0.999 --seed 3)
run_capture "$vb" generate "${flat[@]}" --top-k 0 --output flat.h5 --report flat.json
check "a nucleus past 256 tokens: exit 0" [ "$rc" -eq 0 ]
check "a nucleus past 256 tokens: warned ($(grep warning <<<"$err"))" \
    contains "$err" "of 4 sampled tokens were drawn from the 256 most likely tokens alone"
check "a nucleus past 256 tokens: the report's truncated_draws" python3 -c '
import json, sys
sys.exit(not json.load(open(sys.argv[1]))["group0"]["truncated_draws"] > 0)' flat.json
run_capture "$vb" generate "${flat[@]}" --top-k 300 --output flat_k.h5 --report flat_k.json
check "with --top-k 300: no warning" bash -c '! grep -q "most likely tokens alone" <<<"$1"' _ "$err"
check "with --top-k 300: truncated_draws 0" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["group0"]["truncated_draws"] != 0)' flat_k.json
summary
