#!/usr/bin/env bash
# DESIGN.md "Progress and reports": rank 0's progress line gives rows
# done/total, prompt and generated tokens per second, KV cache use and an
# ETA; --report carries the same figures (besides timings per phase and
# utilisation). The line had no prompt tokens/s and no ETA, and the report
# no prompt_tokens_per_s.
#
# usage: test_progress_report.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
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
"$make_input" in.h5 12 300 || { echo "make_ids_input failed"; exit 1; }

run_capture "$vb" generate --device cpu --model model --input in.h5 --output out.h5 \
    --temperature 0 --max-new-tokens 6 --report run.json
check "generate exits 0" [ "$rc" -eq 0 ]
line=$(grep 'rows done' <<<"$err" | tail -n 1)
echo "progress: $line"
check "progress: rows done/total" contains "$line" "12/12 rows done"
check "progress: prompt tokens/s" bash -c 'grep -Eq "[0-9.]+ prompt tokens/s" <<<"$1"' _ "$line"
check "progress: generated tokens/s" bash -c 'grep -Eq "[0-9.]+ generated tokens/s" <<<"$1"' _ "$line"
check "progress: KV cache use" contains "$line" "KV cache"
check "progress: an ETA (none left: 0s)" contains "$line" "ETA 0s"

# the report's rates, each over the run's elapsed time
rates=$(python3 - run.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
el = r["elapsed_s"]
ok = ("prompt_tokens_per_s" in r and el > 0 and r["prompt_tokens"] > 0 and
      abs(r["prompt_tokens_per_s"] - r["prompt_tokens"] / el) <= 1e-6 * r["prompt_tokens_per_s"] and
      abs(r["generated_tokens_per_s"] - r["generated_tokens"] / el) <= 1e-6 * r["generated_tokens_per_s"])
print("ok" if ok else "bad: %s" % {k: r.get(k) for k in ("prompt_tokens", "prompt_tokens_per_s", "elapsed_s")})
PY
)
check "report: prompt_tokens_per_s = prompt_tokens / elapsed_s ($rates)" [ "$rates" = ok ]

# bench's report is the same object
run_capture "$vb" bench --device cpu --model model --input-len 8 --output-len 4 --num-prompts 4 \
    --report bench.json
check "bench exits 0" [ "$rc" -eq 0 ]
check "bench report: prompt_tokens_per_s" contains "$(cat bench.json 2>/dev/null)" '"prompt_tokens_per_s"'
check "bench progress: prompt tokens/s and an ETA" \
    bash -c 'grep "rows done" <<<"$1" | grep -q "prompt tokens/s.*ETA"' _ "$err"

summary
