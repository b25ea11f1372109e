#!/usr/bin/env bash
# Never hang, never lose finished work (issue #9), on two GPUs: the CPU
# fault test (tests/run/test_faults.sh) again with `--device cuda --tp 2`,
# where the collectives are NCCL all-reduces on a non-blocking
# communicator that the watchdog polls and aborts.
#   - start-up: a line per rank with host, GPU, PCI bus id and tp/dp
#     position, two different bus ids;
#   - SIGKILL of rank 1 mid-run: the job ends within --collective-timeout
#     + 10 s, naming rank 1, rank 0 saves its finished rows on the way out,
#     and --resume completes every row, reusing the rows saved before the
#     fault;
#   - the same with NCCL forced onto sockets (NCCL_P2P_DISABLE=1
#     NCCL_SHM_DISABLE=1), as between two nodes;
#   - SIGSTOP of rank 1 (a hang): the watchdog names rank 1 (no heartbeat
#     answer), same deadline, same resume;
#   - SIGTERM to every rank (a time limit): exit 75, then a clean resume;
#   - three ranks on two GPUs: refused (exit 2) with a message naming the
#     rank and GPU counts.
# Skips (77) with fewer than two GPUs. Outputs are read through
# `voltbatch unpack` (the GPU machine has no h5py).
#
# usage: test_faults_gpu.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
# shellcheck source=../lib.sh
. "$TEST_LIB"
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }

# The first two visible GPUs.
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    IFS=, read -ra gpus <<<"$CUDA_VISIBLE_DEVICES"
elif command -v nvidia-smi >/dev/null; then
    mapfile -t gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null)
else
    gpus=()
fi
if [ "${#gpus[@]}" -lt 2 ]; then
    echo "SKIP: ${#gpus[@]} GPU(s) visible; this test needs two (tp 2)"
    exit 77
fi
export CUDA_VISIBLE_DEVICES="${gpus[0]},${gpus[1]}"
echo "GPUs: $CUDA_VISIBLE_DEVICES"

dir=$(mktemp -d)
pattern="^$vb generate.* --output $dir/"
trap 'pkill -9 -f "$pattern" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || exit 1
export VB_JOURNAL_FLUSH_SECONDS=0.2
timeout_s=5
base=(generate --device cuda --model model --temperature 0.7 --seed 3
      --max-new-tokens 32 --ignore-eos --max-batch 32 --collective-timeout "$timeout_s")
args=("${base[@]}" --tp 2)

# rows_check OUT.h5 N: every index 0..N-1 exactly once, no error row.
rows_check() {
    "$vb" unpack "$1" "$1.jsonl" --overwrite >/dev/null 2>&1 || { echo "unpack failed"; return; }
    python3 - "$1.jsonl" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
idx = sorted(r["index"] for r in rows)
bad = [r["index"] for r in rows if r.get("finish_reason") == "error"]
if idx != list(range(n)):
    print(f"rows: {len(idx)} of {n}, {len(set(idx))} distinct")
elif bad:
    print(f"error rows: {bad[:5]}")
else:
    print("complete")
PY
}
# reused REPORT.json: rows the resumed run took from before the fault.
reused() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rows_done"] - r["rows_this_run"])' "$1" 2>/dev/null || echo 0
}
journal_bytes() { if [ -e "$1.journal" ]; then stat -c %s "$1.journal"; else echo 0; fi; }
rank_pids() { # RANK OUT: the pid of that world rank among the ranks writing OUT
    for p in $(pgrep -f "^$vb generate.* --output $2"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && echo "$p"
    done
}

# Start-up: one line per rank, different GPUs; the run's length on this
# machine sizes the fault runs below.
rows=2000
"$make_input" in.h5 "$rows" 300 || exit 1
t0=$(date +%s%N)
run_capture "$mpirun" -np 2 "$vb" "${args[@]}" --input in.h5 --output "$dir/ref.h5"
t1=$(date +%s%N)
if [ "$rc" -eq 2 ] && contains "$err" "no usable CUDA device"; then
    echo "SKIP: CUDA sees no GPU here (CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES)"
    exit 77
fi
check "tp 2 on two GPUs exits 0" [ "$rc" -eq 0 ]
if [ "$rc" -ne 0 ]; then # nothing below can work
    echo "$err" | grep -v '^ *$' | tail -8
    summary
    exit 1
fi
lines=$(grep -E 'rank [01] on .* \(tp [01]/2, dp 0/1\): GPU [0-9]+ .*, PCI [0-9a-fA-F]{4,8}:' <<<"$err")
echo "$lines"
check "a start-up line per rank with host, GPU, PCI bus id, tp/dp" [ "$(wc -l <<<"$lines")" -eq 2 ]
check "the two ranks on different GPUs" \
    [ "$(sed -n 's/.*, PCI //p' <<<"$lines" | sort -u | wc -l)" -eq 2 ]
check "tp 2: every row" [ "$(rows_check ref.h5 "$rows")" = complete ]
ms=$(((t1 - t0) / 1000000))
# Fault runs last about 20 s uninterrupted, so that a fault lands mid-run.
per_row_ms=$((ms / rows + 1))
big=$((20000 / per_row_ms))
[ "$big" -lt 2000 ] && big=2000
[ "$big" -gt 200000 ] && big=200000
echo "uninterrupted: $rows rows in $ms ms; fault runs use $big rows"
"$make_input" big.h5 "$big" 300 || exit 1

fault() { # NAME SIGNAL [ENV...]: SIGNAL to rank 1 mid-run, then --resume
    local name=$1 sig=$2
    shift 2
    local h5="$dir/$name.h5" # not "out": run_capture sets that global
    env "$@" "$mpirun" -np 2 "$vb" "${args[@]}" --input big.h5 --output "$h5" >"$name.log" 2>&1 &
    local launcher=$!
    for _ in $(seq 600); do # rows are being finished (start-up is over)
        [ "$(journal_bytes "$h5")" -gt 3000 ] && break
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.05
    done
    local victim t0 t1 status
    victim=$(rank_pids 1 "$h5")
    if [ -z "$victim" ]; then
        wait "$launcher"
        echo "$name: no rank 1 to signal (the run ended with status $?):"
        tail -5 "$name.log"
        check "$name: rank 1 signalled mid-run" false
        return
    fi
    t0=$(date +%s)
    kill "-$sig" "$victim"
    wait "$launcher"
    status=$?
    t1=$(date +%s)
    echo "$name: rank 1 (pid $victim) got SIG$sig; the job ended after $((t1 - t0)) s, status $status"
    grep -E "rank|NCCL|noticed" "$name.log" | tail -8
    check "$name: error status" [ "$status" -ne 0 ]
    check "$name: ended within --collective-timeout + 10 s" [ $((t1 - t0)) -le $((timeout_s + 10)) ]
    check "$name: no rank left behind" gone_soon "^$vb generate.* --output $h5"
    check "$name: the message names rank 1" \
        grep -qE "lost rank 1\b|rank 1 .*(signal 9|Killed)|rank 1 .*(exited|terminated)" "$name.log"
    check "$name: rows saved before the fault" [ "$(journal_bytes "$h5")" -gt 0 ]
    # the watchdog's rescue: on its own timeout, or on mpirun's SIGTERM
    check "$name: rank 0 saved its finished rows as the job ended" \
        grep -q "rank 0\]: finished rows are saved" "$name.log"
    run_capture env "$@" "$mpirun" -np 2 "$vb" "${args[@]}" --input big.h5 --output "$h5" \
        --resume --report "$name.json"
    check "$name: --resume exits 0" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || echo "$err" | tail -5
    rows_state=$(rows_check "$h5" "$big")
    [ "$rows_state" = complete ] || echo "$name: $rows_state"
    check "$name: --resume completes every row" [ "$rows_state" = complete ]
    local kept
    kept=$(reused "$name.json")
    echo "$name: $kept rows kept from before the fault"
    check "$name: --resume kept the rows saved before the fault" [ "$kept" -gt 0 ]
}

fault lost KILL
fault lost_sockets KILL NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1
fault hang STOP
check "hang: the watchdog names rank, step, phase and collective" \
    grep -qE "rank 0: no progress for .* at step [0-9]+, phase: .*collective: the NCCL all-reduce" hang.log
check "hang: the lost rank is rank 1" grep -qE "lost rank 1\b" hang.log

# A time limit: SIGTERM to every rank, as Slurm does.
h5="$dir/term.h5"
"$mpirun" -np 2 "$vb" "${args[@]}" --input big.h5 --output "$h5" >term.log 2>&1 &
launcher=$!
for _ in $(seq 600); do
    [ "$(journal_bytes "$h5")" -gt 3000 ] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.05
done
pkill -TERM -f "^$vb generate.* --output $h5"
wait "$launcher"
term_rc=$?
echo "SIGTERM: status $term_rc"
check "SIGTERM: exit 75" [ "$term_rc" -eq 75 ]
run_capture "$mpirun" -np 2 "$vb" "${args[@]}" --input big.h5 --output "$h5" --resume
check "SIGTERM: --resume exits 0" [ "$rc" -eq 0 ]
rows_state=$(rows_check "$h5" "$big")
[ "$rows_state" = complete ] || echo "SIGTERM: $rows_state"
check "SIGTERM: --resume completes every row" [ "$rows_state" = complete ]

# Three ranks on two GPUs: refused before anything runs.
run_capture "$mpirun" --oversubscribe -np 3 "$vb" "${base[@]}" --tp 1 --input in.h5 \
    --output "$dir/three.h5"
echo "$err" | grep -v '^ *$' | head -5
check "3 ranks on 2 GPUs: exit 2" [ "$rc" -eq 2 ]
check "3 ranks on 2 GPUs: the message names both counts" \
    contains "$err" "3 ranks on this node but 2 GPUs visible"
summary
