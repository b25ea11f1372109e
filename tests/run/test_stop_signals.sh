#!/usr/bin/env bash
# Stopping a run under mpirun (issue 23): each way a stop request reaches a
# run gives what README.md "Stopping a run" says, and the run then resumes
# to an output equal to an uninterrupted run's, every row once.
#
# One output is stopped again and again, each run a --resume of the last,
# once new rows reach its journal:
#   jobs/slurm-1node.sbatch (LAUNCH=mpirun, the real mpirun and voltbatch):
#     SIGTERM to the batch shell (scancel --batch --signal=TERM), SIGINT to its
#     process group (Ctrl-C in a terminal), SIGUSR1 to the batch shell
#     (--signal=B:USR1): exit 75 and a requeue;
#   plain mpirun -np 2 voltbatch generate: SIGUSR1 to mpirun, SIGTERM and
#     SIGINT to every rank: exit 75; SIGINT to mpirun's process group (Ctrl-C)
#     and SIGTERM to mpirun: Open MPI's own abort, exit 1, rows kept;
# then the job script runs it to the end. Also: SIGUSR1 to a rank still
# waiting in MPI_Init for the others is a clean stop (75), not a kill.
# Open MPI only: the mpirun behaviour asserted is Open MPI 4.1's, measured.
#
# usage: test_stop_signals.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL FAKE_LAUNCHER JOBS_DIR [ROWS]
# rc is set by run_capture in tests/lib.sh.
# shellcheck disable=SC2154
set -u
vb=$1
mpirun=$2
make_model=$3
fake_launcher=$4
jobs=$5
rows=${6:-3000}
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py
if ! "$mpirun" --version 2>&1 | grep -q "Open MPI"; then
    echo "mpirun is not Open MPI's; the behaviour this test checks is Open MPI's; skipping"
    exit 77
fi
dir=$(mktemp -d)
# Signals go only to this test's ranks (other tests may run voltbatch at the
# same time): the processes whose command line names $out_h5 or $start_h5.
out_h5="$dir/run.h5"
start_h5="$dir/start.h5"
cleanup() {
    pkill -9 -f "^$vb generate.* --output ($out_h5|$start_h5)" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
for ((i = 0; i < rows; i++)); do
    printf '{"id": "r%d", "prompt": "Question %d: what is %d plus %d?"}\n' "$i" "$i" "$i" "$((i * 3))"
done >prompts.jsonl
"$vb" pack prompts.jsonl in.h5 >/dev/null || { echo "voltbatch pack failed"; exit 1; }

# The job script's commands: mpirun is the real one; voltbatch is the real
# one, given the script's command line with 24 new tokens a row on the CPU
# (the script asks for 512) and writing that command line to $ARGS_LOG, so
# that the plain mpirun runs below run the same one; scontrol records.
mkdir bin
printf '#!/usr/bin/env bash\nexec "%s" "$@"\n' "$mpirun" >bin/mpirun
cat >bin/voltbatch <<'SH'
#!/usr/bin/env bash
[ "${OMPI_COMM_WORLD_RANK:-0}" != 0 ] || printf '%s\0' "$@" >"$ARGS_LOG"
exec "$REAL_VOLTBATCH" "$@" --max-new-tokens 24 --max-batch 32 --device cpu
SH
cat >bin/scontrol <<'SH'
#!/usr/bin/env bash
echo "scontrol $*" >>"$SHIM_LOG"
SH
chmod +x bin/*
export REAL_VOLTBATCH="$vb" ARGS_LOG="$dir/args" SHIM_LOG="$dir/shim.log"
# Rows reach the journal every 0.2 s (5 s by default), so that each run
# shows new rows soon.
export VB_JOURNAL_FLUSH_SECONDS=0.2
job=(env PATH="$dir/bin:$PATH" MODEL="$dir/model" INPUT="$dir/in.h5" TP=1 SLURM_NTASKS=2
     SLURM_JOB_ID=5 LAUNCH=mpirun VOLTBATCH="$dir/bin/voltbatch"
     bash "$jobs/slurm-1node.sbatch")

run_capture "${job[@]:0:1}" OUTPUT="$dir/ref.h5" "${job[@]:1}"
check "uninterrupted job exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || { echo "$err" | tail -5; summary; exit 1; }

# Waits until the journal has grown past $1 bytes (rows are being finished),
# at most 120 s, so that the stop lands mid-generation. (journal_size,
# wait_for_journal: tests/lib.sh)
journal_bytes() { journal_size "$out_h5.journal"; }
wait_for_rows() { wait_for_journal "$out_h5.journal" "$1" "$2" 1200 0.1; } # BYTES PID
# stop NAME ROUTE SIGNAL CMD...: runs CMD (a process group of its own, as a
# shell with job control or a batch system starts it) until new rows are in
# the journal, then sends SIGNAL by ROUTE and waits:
#   proc   to CMD's process (the job script's batch shell, or mpirun)
#   group  to CMD's process group (Ctrl-C in a terminal)
#   ranks  to every voltbatch rank (what srun and Slurm's scancel do)
# Leaves rc, and grew=1 when the journal grew.
stop() {
    local name=$1 route=$2 sig=$3
    shift 3
    local before pid
    before=$(journal_bytes)
    : >"$SHIM_LOG"
    "$fake_launcher" newgroup "$@" >"log.$name" 2>&1 &
    pid=$!
    # (a new journal holds a header of some 400 bytes before any row)
    wait_for_rows "$((before > 1024 ? before : 1024))" "$pid" ||
        echo "$name: no new rows before the signal"
    case $route in
    proc) kill -"$sig" "$pid" ;;
    group) kill -"$sig" -- "-$pid" ;;
    ranks) pkill -"$sig" -f "^$vb generate.* --output $out_h5" ;;
    esac
    wait "$pid"
    rc=$?
    # no rank of this run may still write the journal when the next starts
    for _ in $(seq 600); do
        pgrep -f "^$vb generate.* --output $out_h5" >/dev/null || break
        sleep 0.1
    done
    grew=0
    [ "$(journal_bytes)" -gt "$before" ] && grew=1
    echo "$name: exit $rc, journal $before -> $(journal_bytes) bytes"
}
job_out=("${job[@]:0:1}" OUTPUT="$out_h5" "${job[@]:1}")

stop "job-TERM" proc TERM "${job_out[@]}"
check "job script, SIGTERM to the batch shell: exit 75" [ "$rc" -eq 75 ]
check "job script, SIGTERM to the batch shell: rows saved" [ "$grew" -eq 1 ]
check "job script, SIGTERM to the batch shell: requeued" grep -q "scontrol requeue 5" "$SHIM_LOG"
stop "job-ctrl-c" group INT "${job_out[@]}"
check "job script, Ctrl-C: exit 75" [ "$rc" -eq 75 ]
check "job script, Ctrl-C: requeued" grep -q "scontrol requeue 5" "$SHIM_LOG"
stop "job-USR1" proc USR1 "${job_out[@]}"
check "job script, SIGUSR1 to the batch shell: exit 75" [ "$rc" -eq 75 ]
check "job script, SIGUSR1 to the batch shell: requeued" grep -q "scontrol requeue 5" "$SHIM_LOG"
check "job script: the resumed runs ran with --resume" bash -c 'tr "\0" "\n" <args | grep -qx -- --resume'

# mpirun alone, with the command line the job script ran (a --resume).
mapfile -d '' args <args
plain=("$mpirun" -np 2 "$dir/bin/voltbatch" "${args[@]}")
stop "mpirun-USR1" proc USR1 "${plain[@]}"
check "mpirun, SIGUSR1 to mpirun (forwarded to the ranks): exit 75" [ "$rc" -eq 75 ]
stop "ranks-TERM" ranks TERM "${plain[@]}"
check "mpirun, SIGTERM to every rank: exit 75" [ "$rc" -eq 75 ]
stop "ranks-INT" ranks INT "${plain[@]}"
check "mpirun, SIGINT to every rank: exit 75" [ "$rc" -eq 75 ]
# Open MPI's mpirun takes SIGTERM, SIGINT and SIGHUP as its own abort: the
# ranks get SIGCONT and SIGTERM and about a second to save, and mpirun exits
# 1 whatever they return (README.md "Stopping a run").
stop "mpirun-ctrl-c" group INT "${plain[@]}"
check "mpirun, Ctrl-C: Open MPI's abort, exit 1 (README)" [ "$rc" -eq 1 ]
check "mpirun, Ctrl-C: rows saved" [ "$grew" -eq 1 ]
stop "mpirun-TERM" proc TERM "${plain[@]}"
check "mpirun, SIGTERM to mpirun: Open MPI's abort, exit 1 (README)" [ "$rc" -eq 1 ]
check "mpirun, SIGTERM to mpirun: rows saved" [ "$grew" -eq 1 ]

: >"$SHIM_LOG"
run_capture "${job_out[@]}"
check "the job script's final --resume exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || echo "$err" | tail -5
check "no requeue after the last run" [ ! -s "$SHIM_LOG" ]

compare=$(compare_outputs ref.h5 run.h5)
echo "compare: $compare"
check "stopped and resumed output equals the uninterrupted one" [ "${compare%% *}" = same ]
check "every row present once" [ "${compare##* }" = "$rows" ]

# A stop while the ranks start: rank 1 waits for a file before it even
# starts voltbatch, so rank 0 waits in MPI_Init for it; SIGUSR1 to rank 0
# then (once rank 0 has a handler for it, or after 30 s) must stop the run
# cleanly: exit 75, and --resume finishes it. (--tp 2: one group, so rank 1
# stops at the same step.)
head -40 prompts.jsonl >start.jsonl
"$vb" pack start.jsonl start-in.h5 >/dev/null
start=(generate --model model --input start-in.h5 --device cpu --tp 2 --max-new-tokens 8
       --output "$start_h5")
# shellcheck disable=SC2016 # (the sh -c script's own $0 and $@)
"$fake_launcher" newgroup "$mpirun" -np 1 "$vb" "${start[@]}" : -np 1 \
    sh -c 'while [ ! -e go ]; do sleep 0.1; done; exec "$0" "$@"' "$vb" "${start[@]}" \
    >log.start 2>&1 &
launcher=$!
# SIGUSR1 is signal 10: bit 9 of /proc/PID/status SigCgt (caught signals).
catches_usr1() { # PID
    local mask
    mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] && (((0x$mask >> 9) & 1))
}
rank0=
for _ in $(seq 300); do
    rank0=$(pgrep -f "^$vb generate.* --output $start_h5" | head -1)
    [ -n "$rank0" ] && catches_usr1 "$rank0" && break
    sleep 0.1
done
check "start-up: rank 0 is still waiting for rank 1 (no journal yet)" [ ! -e "$start_h5.journal" ]
[ -n "$rank0" ] && kill -USR1 "$rank0"
touch go
wait "$launcher"
start_rc=$?
echo "start-up stop: exit $start_rc"
check "start-up: SIGUSR1 in MPI_Init is a clean stop, exit 75" [ "$start_rc" -eq 75 ]
run_capture "$mpirun" -np 2 "$vb" "${start[@]}" --resume
check "start-up: --resume then finishes, exit 0" [ "$rc" -eq 0 ]
n_start=$(python3 -c 'import sys, h5py; print(len(h5py.File(sys.argv[1], "r")["index"]))' \
    "$start_h5" 2>/dev/null)
check "start-up: every row present" [ "$n_start" = 40 ]
summary
