#!/usr/bin/env bash
# Never hang during start-up: a rank that stops (SIGSTOP, a frozen node)
# before the first step, here while it reads the checkpoint
# (tests/run/stop_shim.c), must not keep the others waiting forever in the
# start-up's collectives: the job ends, naming the lost rank and the
# start-up phase, within 4 x --collective-timeout + 60 s (the watchdog's
# heartbeats, as for a rank lost mid-run: test_faults.sh). Start-up has no
# deadline (loading a large model takes minutes): a rank busy there still
# answers heartbeats, so a slow start is not ended; the test checks that
# too, with a rank that takes 4 x --collective-timeout to open its
# checkpoint.
#
# usage: test_startup_hang.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT STOP_SHIM
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
shim=$5
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
pattern="^$vb generate.* --output $dir/"
trap 'pkill -9 -f "$pattern" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null && "$make_input" in.h5 20 300 || exit 1
timeout_s=3
end_within=$((4 * timeout_s + 60)) # loose: a busy 2-core CI machine
args=(generate --device cpu --model model --input in.h5 --tp 2 --max-new-tokens 4
      --collective-timeout "$timeout_s")

# rank 1 stops when it opens the checkpoint; a job that still runs after
# 3 times the bound is a hang (the outer timeout ends it: status 124)
t0=$(date +%s)
run_capture timeout $((3 * end_within)) "$mpirun" -x LD_PRELOAD="$shim" \
    -x STOP_SHIM_PATH='*model.safetensors' -x STOP_SHIM_RANK=1 \
    -np 2 "$vb" "${args[@]}" --output "$dir/hang.h5"
t1=$(date +%s)
echo "rank 1 stopped at start-up; the job ended after $((t1 - t0)) s with status $rc"
printf '%s\n' "$err" | grep -E "error" | head -3
check "a rank stopped at start-up: the job ends (no hang)" [ "$rc" -ne 124 ]
check "it ends with an error status" [ "$rc" -ne 0 ]
check "within 4 x --collective-timeout + 60 s" [ $((t1 - t0)) -le "$end_within" ]
check "the message names the lost rank and the start-up phase" \
    grep -qE "rank 0: rank 1 did not answer a heartbeat .* starting up" <<<"$err"
check "no rank left behind" gone_soon "$pattern"
pkill -9 -f "$pattern" 2>/dev/null

# a start-up slower than --collective-timeout is not a hang: rank 1 sleeps
# 4 x --collective-timeout while it opens the checkpoint, its watchdog
# answering every heartbeat meanwhile
run_capture timeout $((3 * end_within)) "$mpirun" -x LD_PRELOAD="$shim" \
    -x STOP_SHIM_PATH='*model.safetensors' -x STOP_SHIM_RANK=1 \
    -x STOP_SHIM_SLEEP=$((4 * timeout_s)) \
    -np 2 "$vb" "${args[@]}" --output "$dir/slow.h5"
check "a start-up slower than --collective-timeout: exits 0" [ "$rc" -eq 0 ]
printf '%s\n' "$err" | grep -E "error" | head -3
summary
