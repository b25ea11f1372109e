#!/usr/bin/env bash
# `voltbatch bench --length-dist lognormal` on the tiny model (issue #19's
# mixed-length workload f), under mpirun -np 2 (two groups: rank 0 writes
# the prompts, both read them): each row's prompt and output lengths lie
# inside the clamps, every row generates exactly its /max_new_tokens
# (EOS ignored), the same --seed gives the same lengths and another seed
# other ones, and the report's "bench" object holds the settings and the
# realised totals, which equal what the engine counted. Bad ranges and
# option mixes exit 2 with a line naming the option. Reads the kept
# scratch files (--keep-scratch) with h5py.
#
# usage: test_bench_lengths.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL
# shellcheck disable=SC2154  # rc, out and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || exit 1
export TMPDIR="$dir/scratch"
mkdir -p "$TMPDIR"

# bench_f SEED NAME: 24 prompts of mean 40 in 8:120 tokens (+ 4 shared) ->
# mean 12 in 2:40, its scratch folder moved to NAME
bench_f() {
    run_capture "$mpirun" -np 2 "$vb" bench --model model --device cpu --num-prompts 24 \
        --prefix-len 4 --length-dist lognormal --input-len 40 --input-len-range 8:120 \
        --output-len 12 --output-len-range 2:40 --seed "$1" --keep-scratch --report "$2.json"
    local kept
    kept=$(printf '%s\n' "$out" | sed -n 's/^bench: the scratch files stay in //p')
    [ -n "$kept" ] && mv "$kept" "$2"
}

bench_f 5 a
check "lognormal bench exits 0" [ "$rc" -eq 0 ]
check "the scratch folder is kept and named" test -f a/prompts.h5 -a -f a/out.h5
check "the summary names the distribution" contains "$out" "lognormal 8-120 tokens"
check "per row: lengths in the clamps, exactly the asked tokens generated" python3 - <<'PY'
import sys, h5py, numpy as np
i, o = h5py.File("a/prompts.h5", "r"), h5py.File("a/out.h5", "r")
lens = np.array([len(r) for r in i["input_ids"]])
asked = i["max_new_tokens"][:]
ok = len(lens) == 24 and ((lens >= 4 + 8) & (lens <= 4 + 120)).all()
ok &= ((asked >= 2) & (asked <= 40)).all()
ok &= len(set(lens)) > 5 and len(set(asked)) > 5          # mixed, not one length
ok &= all((r[:4] == i["input_ids"][0][:4]).all() for r in i["input_ids"])
idx = o["index"][:]
ok &= sorted(idx) == list(range(24))
ok &= (o["prompt_tokens"][:] == lens[idx]).all()
ok &= (o["completion_tokens"][:] == asked[idx]).all()
ok &= all(len(r) == n for r, n in zip(o["output_ids"], asked[idx]))
sys.exit(not ok)
PY
check "report: settings and realised totals, equal to the engine's counts" python3 - <<'PY'
import json, sys, h5py, numpy as np
r = json.load(open("a.json"))
b = r["bench"]
i = h5py.File("a/prompts.h5", "r")
lens = np.array([len(x) for x in i["input_ids"]]) - 4
asked = i["max_new_tokens"][:]
ok = (b["length_dist"] == "lognormal" and b["lognormal_sigma"] == 0.8 and b["seed"] == "5"
      and b["num_prompts"] == 24 and b["prefix_len"] == 4)
ok &= (b["input_len"]["mean"], b["input_len"]["min"], b["input_len"]["max"]) == (40, 8, 120)
ok &= (b["output_len"]["mean"], b["output_len"]["min"], b["output_len"]["max"]) == (12, 2, 40)
ok &= b["input_len"]["tokens"] == lens.sum() and b["output_len"]["tokens"] == asked.sum()
ok &= abs(b["input_len"]["realised_mean"] - lens.mean()) < 1e-9
ok &= abs(b["output_len"]["realised_mean"] - asked.mean()) < 1e-9
ok &= b["prompt_tokens"] == lens.sum() + 4 * 24 == r["prompt_tokens"]
ok &= b["output_tokens"] == asked.sum() == r["generated_tokens"]
# the expected clamped means: a little under the asked ones
ok &= 38 < b["input_len"]["clamped_mean"] < 40 and 11 < b["output_len"]["clamped_mean"] < 12
ok &= r["settings"]["max_new_tokens"] is None        # per row, not one value
sys.exit(not ok)
PY

bench_f 5 b
check "same seed: exit 0" [ "$rc" -eq 0 ]
check "same seed: the same prompts and lengths" python3 -c '
import sys, h5py
a, b = (h5py.File(p + "/prompts.h5", "r") for p in "ab")
sys.exit(not ((a["max_new_tokens"][:] == b["max_new_tokens"][:]).all()
              and all((x == y).all() for x, y in zip(a["input_ids"], b["input_ids"]))))'
bench_f 6 c
check "another seed: exit 0" [ "$rc" -eq 0 ]
check "another seed: other lengths" python3 -c '
import sys, h5py
a, c = (h5py.File(p + "/prompts.h5", "r") for p in "ac")
sys.exit((a["max_new_tokens"][:] == c["max_new_tokens"][:]).all()
         or [len(x) for x in a["input_ids"]] == [len(x) for x in c["input_ids"]])'

# fixed lengths (the default) record themselves as their own range
run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --input-len 8 \
    --output-len 3 --num-prompts 5 --report fixed.json
check "fixed bench exits 0" [ "$rc" -eq 0 ]
check "report: fixed lengths recorded" python3 -c '
import json, sys
b = json.load(open("fixed.json"))["bench"]
sys.exit(not (b["length_dist"] == "fixed" and b["lognormal_sigma"] is None
              and b["input_len"] == {"mean": 8, "min": 8, "max": 8, "clamped_mean": 8.0,
                                     "realised_mean": 8.0, "tokens": 40}
              and b["output_tokens"] == 15 and b["prompt_tokens"] == 40))'
check "without --keep-scratch the scratch files go" [ -z "$(ls -A "$TMPDIR")" ]

# refused before anything starts: exit 2 and one line naming the option
refused() { # NAME PATTERN BENCH-OPTIONS...
    local name=$1 pattern=$2
    shift 2
    run_capture "$vb" bench --model model --device cpu --length-dist lognormal "$@"
    check "$name: exit 2" [ "$rc" -eq 2 ]
    check "$name: says '$pattern'" contains "$err" "$pattern"
}
refused "MIN > MAX" "MIN 50 is above MAX 10" --input-len-range 50:10
refused "MIN 0" "--output-len-range: MIN is 0" --output-len-range 0:10
refused "not numbers" "'a:b' is not MIN:MAX" --input-len-range a:b
refused "no colon" "'100' is not MIN:MAX" --input-len-range 100
refused "trailing text" "'1:10x' is not MIN:MAX" --output-len-range 1:10x
refused "empty MAX" "'5:' is not MIN:MAX" --input-len-range 5:
refused "mean outside" "--input-len 1024 (the mean) is outside --input-len-range 16:512" \
    --input-len-range 16:512
refused "with --input" "--input FILE brings its own" --input x.h5
refused "unknown distribution" "--length-dist: 'normal' is not one of" --length-dist normal
# an input file's rows are used as they are: the options that shape
# synthetic prompts are refused rather than silently ignored
for opt in "--num-prompts 3" "--input-len 4" "--prefix-len 2"; do
    # shellcheck disable=SC2086 # the option and its value as two words
    run_capture "$vb" bench --model model --device cpu --input x.h5 $opt
    check "$opt with --input: exit 2" [ "$rc" -eq 2 ]
    check "$opt with --input: says so" contains "$err" "${opt% *} shapes synthetic prompts"
done
run_capture "$vb" bench --model model --device cpu --input-len-range 1:10
check "range without lognormal: exit 2" [ "$rc" -eq 2 ]
check "range without lognormal: says so" contains "$err" \
    "--input-len-range needs --length-dist lognormal"
# longer than the tiny model's 2048 positions: rows would stop early
run_capture "$mpirun" -np 1 "$vb" bench --model model --device cpu --length-dist lognormal \
    --input-len 100 --input-len-range 10:2000 --output-len 50 --output-len-range 1:100
check "too long for the model: exit 2" [ "$rc" -eq 2 ]
check "too long for the model: says why" contains "$err" "need 2100 positions, above the model's 2048"
summary
