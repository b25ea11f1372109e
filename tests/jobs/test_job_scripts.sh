#!/usr/bin/env bash
# The job scripts in jobs/: each passes `bash -n` and shellcheck (when
# installed), and runs with srun, mpirun, scontrol, qstat, qsub and voltbatch
# replaced by shims that record and check what they are given: the
# launcher's options, the voltbatch arguments, --resume when a journal
# exists, a requeue after exit 75; the two-node layouts (tp within a node /
# dp across nodes, tp across nodes) under srun and mpirun; the PBS one's
# mpirun line.
#
# Stopping (issue 23): the batch system's signals are sent the ways they
# arrive (Slurm's --signal=B:USR1 and scancel --batch --signal=TERM|INT to the
# script alone, Ctrl-C to the script's process group, scancel --signal=TERM to
# the tasks, PBS's timer), with fake_launcher standing in for mpirun and srun
# with their signal handling (Open MPI's mpirun aborts, exit 1, on SIGTERM and
# SIGINT and forwards only SIGUSR1/SIGUSR2; srun kills its tasks on SIGTERM
# and forwards SIGUSR1); each script must pass SIGUSR1 on, exit 75 and
# requeue (or resubmit, PBS).
#
# usage: test_job_scripts.sh JOBS_DIR FAKE_LAUNCHER
set -u
jobs=$1
fake_launcher=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$jobs"/*.sbatch "$jobs"/*.pbs; do
    check "bash -n $(basename "$f")" bash -n "$f"
    if command -v shellcheck >/dev/null; then
        check "shellcheck $(basename "$f")" shellcheck "$f"
    fi
done
command -v shellcheck >/dev/null || echo "skip shellcheck: not installed (apt-get install shellcheck)"

# Shims: each appends its argv to a log; srun/mpirun skip their options and
# run the command under fake_launcher, once, as a launcher would run a task.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/srun" <<'SH'
#!/usr/bin/env bash
echo "srun $*" >>"$SHIM_LOG"
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$FAKE_LAUNCHER" srun "$SHIM_LOG" "$@"
SH
cat >"$tmp/bin/mpirun" <<'SH'
#!/usr/bin/env bash
echo "mpirun $*" >>"$SHIM_LOG"
while [ $# -gt 0 ]; do
    case $1 in -np | --map-by | --bind-to | --hostfile) shift 2 ;; *) break ;; esac
done
exec "$FAKE_LAUNCHER" mpirun "$SHIM_LOG" "$@"
SH
cat >"$tmp/bin/scontrol" <<'SH'
#!/usr/bin/env bash
echo "scontrol $*" >>"$SHIM_LOG"
exit "${FAKE_SCONTROL_RC:-0}"
SH
cat >"$tmp/bin/qsub" <<'SH'
#!/usr/bin/env bash
echo "qsub $*" >>"$SHIM_LOG"
SH
# qstat -f: the job's wall-time limit and use, as PBS prints them
# (FAKE_WALLTIME unset: qstat knows nothing, as outside PBS).
cat >"$tmp/bin/qstat" <<'SH'
#!/usr/bin/env bash
[ -n "${FAKE_WALLTIME:-}" ] || exit 1
echo "Job Id: $PBS_JOBID"
echo "    resources_used.walltime = 00:00:00"
echo "    Resource_List.walltime = $FAKE_WALLTIME"
SH
# The voltbatch shim exits with $FAKE_STATUS; or, when FAKE_WAIT_SIGNAL is
# set, writes its pid there once it can take a signal, and exits 75 (what
# voltbatch does) on SIGUSR1, SIGTERM or SIGINT, after FAKE_STOP_SECONDS
# (saving takes a while), or 1 when none came within 60 s. Either way it
# writes its --report as voltbatch does, with FAKE_ROWS (default 1) rows
# finished in the run.
cat >"$tmp/bin/voltbatch" <<'SH'
#!/usr/bin/env bash
echo "voltbatch $*" >>"$SHIM_LOG"
report=''
while [ $# -gt 0 ]; do
    [ "$1" = --report ] && report=$2
    shift
done
write_report() {
    [ -z "$report" ] || printf '{\n  "rows_this_run": %s,\n  "elapsed_s": 1.0\n}\n' \
        "${FAKE_ROWS:-1}" >"$report"
}
if [ -n "${FAKE_WAIT_SIGNAL:-}" ]; then
    stopped() {
        echo "voltbatch got $1" >>"$SHIM_LOG"
        sleep "${FAKE_STOP_SECONDS:-0}"
        write_report
        exit 75
    }
    trap 'stopped USR1' USR1
    trap 'stopped TERM' TERM
    trap 'stopped INT' INT
    echo $$ >"$FAKE_WAIT_SIGNAL.tmp"
    mv "$FAKE_WAIT_SIGNAL.tmp" "$FAKE_WAIT_SIGNAL"
    for _ in $(seq 600); do sleep 0.1; done
    exit 1
fi
write_report
exit "${FAKE_STATUS:-0}"
SH
chmod +x "$tmp/bin/"*

run_job() { # script, then env assignments
    local script=$1
    shift
    : >"$tmp/log"
    (cd "$tmp/work" && env PATH="$tmp/bin:$PATH" SHIM_LOG="$tmp/log" SLURM_NTASKS=4 \
        SLURM_JOB_ID=77 VOLTBATCH=voltbatch FAKE_LAUNCHER="$fake_launcher" "$@" \
        bash "$jobs/$script" >/dev/null 2>&1)
    rc=$?
    log=$(cat "$tmp/log")
}
mkdir -p "$tmp/work"

run_job slurm-1node.sbatch FAKE_STATUS=0
check "1node: exit 0" [ "$rc" -eq 0 ]
check "1node: srun with PMIx and 4 tasks" contains "$log" "srun --mpi=pmix --ntasks=4 --gpus-per-task=1"
check "1node: srun leaves ranks that exit first alone" contains "$log" "--kill-on-bad-exit=0"
check "1node: voltbatch generate --tp 4" contains "$log" "voltbatch generate --model"
check "1node: tp 4" contains "$log" "--tp 4"
check "1node: no --resume on a fresh output" bash -c "! grep -q -- --resume <<<\"\$1\"" _ "$log"
check "1node: no requeue after success" bash -c "! grep -q scontrol <<<\"\$1\"" _ "$log"

touch "$tmp/work/out.h5.journal"
run_job slurm-1node.sbatch FAKE_STATUS=75
check "1node: exit 75 passed on" [ "$rc" -eq 75 ]
check "1node: --resume when a journal exists" contains "$log" "--resume"
check "1node: requeue after exit 75" contains "$log" "scontrol requeue 77"
rm -f "$tmp/work/out.h5.journal"

# A stop before any row finished (a time limit shorter than the model's
# loading) is not requeued, or it would come back forever; a requeue the
# site refuses keeps the clean stop's 75 (set -e made it 1, session 31).
run_job slurm-1node.sbatch FAKE_STATUS=75 FAKE_ROWS=0
check "1node, no rows finished: exit 75" [ "$rc" -eq 75 ]
check "1node, no rows finished: not requeued" bash -c "! grep -q scontrol <<<\"\$1\"" _ "$log"
run_job slurm-1node.sbatch FAKE_STATUS=75 FAKE_SCONTROL_RC=1
check "1node, requeue refused: still exit 75" [ "$rc" -eq 75 ]
check "1node, requeue refused: it was asked" contains "$log" "scontrol requeue 77"
run_job slurm-array.sbatch FAKE_STATUS=75 FAKE_ROWS=0 SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
check "array, no rows finished: not requeued" bash -c "! grep -q scontrol <<<\"\$1\"" _ "$log"
check "array: a report per task" contains "$log" "--report outputs/out-3.json"

run_job slurm-1node.sbatch FAKE_STATUS=0 LAUNCH=mpirun
check "1node mpirun: exit 0" [ "$rc" -eq 0 ]
check "1node mpirun: 4 ranks, 4 per node" contains "$log" "mpirun -np 4 --map-by ppr:4:node"
# every task on the one node, whatever --ntasks-per-node the site sets
run_job slurm-1node.sbatch FAKE_STATUS=0 LAUNCH=mpirun SLURM_NTASKS=8
check "1node mpirun, 8 tasks: 8 ranks on the node" contains "$log" "mpirun -np 8 --map-by ppr:8:node"

run_job slurm-2node.sbatch FAKE_STATUS=0 SLURM_NTASKS=8
check "2node dp: tp 4 per node" contains "$log" "--tp 4"
check "2node dp: block placement" contains "$log" "--distribution=block:block"
check "2node dp: srun with PMIx, 8 tasks, a GPU each" \
    contains "$log" "srun --mpi=pmix --ntasks=8 --distribution=block:block --gpus-per-task=1"
run_job slurm-2node.sbatch FAKE_STATUS=0 SLURM_NTASKS=8 LAYOUT=tp
check "2node tp: tp 8 across both nodes" contains "$log" "--tp 8"
run_job slurm-2node.sbatch FAKE_STATUS=0 SLURM_NTASKS=8 LAUNCH=mpirun
check "2node mpirun: 8 ranks, 4 per node" contains "$log" "mpirun -np 8 --map-by ppr:4:node"
check "2node mpirun: tp 4 within a node" contains "$log" "--tp 4"
touch "$tmp/work/out.h5.journal"
run_job slurm-2node.sbatch FAKE_STATUS=75 SLURM_NTASKS=8 SLURM_JOB_ID=79
check "2node: exit 75 passed on" [ "$rc" -eq 75 ]
check "2node: --resume when a journal exists" contains "$log" "--resume"
check "2node: requeue after exit 75" contains "$log" "scontrol requeue 79"
rm -f "$tmp/work/out.h5.journal"
run_job slurm-2node.sbatch FAKE_STATUS=0 SLURM_NTASKS=8 LAYOUT=bad
check "2node: an unknown LAYOUT is refused (exit 2)" [ "$rc" -eq 2 ]

run_job slurm-array.sbatch FAKE_STATUS=0 SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
check "array: shard 3 in, out-3 out" contains "$log" "--input shards/prompts-3.h5 --output outputs/out-3.h5"
run_job slurm-array.sbatch FAKE_STATUS=75 SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
check "array: requeues its own task" contains "$log" "scontrol requeue 90_3"

# PBS: as many ranks as PBS_NODEFILE lines, through its hostfile.
printf 'n1\nn1\nn1\nn1\n' >"$tmp/nodefile"
run_job pbs-1node.pbs FAKE_STATUS=75 PBS_NODEFILE="$tmp/nodefile" PBS_O_WORKDIR="$tmp/work"
check "pbs: mpirun with 4 ranks from the node file" \
    contains "$log" "mpirun -np 4 --hostfile $tmp/nodefile --bind-to none voltbatch generate"
check "pbs: exit 75 passed on" [ "$rc" -eq 75 ]


# --- stopping ------------------------------------------------------------
# run_stop SCRIPT ROUTE SIGNAL [ENV...]: starts the script as a batch system
# would (a process group of its own, SIGINT not ignored) on the waiting
# voltbatch shim and, once voltbatch runs, sends SIGNAL by ROUTE:
#   shell   to the batch shell alone (Slurm's --signal=B:SIG, scancel --batch)
#   group   to the script's process group (Ctrl-C in a terminal)
#   task    to voltbatch itself (scancel --signal=SIG: the step's tasks)
#   twice   SIGUSR1 to the shell, then SIGNAL while voltbatch is saving
#   none    nothing: the script must ask for the stop itself (PBS's timer)
# then waits for the script. Leaves rc, log (the shims' lines) and out (the
# script's output).
run_stop() {
    local script=$1 route=$2 sig=$3
    shift 3
    : >"$tmp/log"
    rm -f "$tmp/started"
    (cd "$tmp/work" && exec env PATH="$tmp/bin:$PATH" SHIM_LOG="$tmp/log" SLURM_NTASKS=4 \
        SLURM_JOB_ID=78 VOLTBATCH=voltbatch FAKE_LAUNCHER="$fake_launcher" \
        FAKE_WAIT_SIGNAL="$tmp/started" "$@" \
        "$fake_launcher" newgroup bash "$jobs/$script" >"$tmp/out" 2>&1) &
    local job=$!
    for _ in $(seq 300); do [ -s "$tmp/started" ] && break; sleep 0.1; done
    case $route in
    shell) kill -"$sig" "$job" ;;
    group) kill -"$sig" -- "-$job" ;;
    task) kill -"$sig" "$(cat "$tmp/started")" ;;
    twice)
        kill -USR1 "$job"
        sleep 0.3
        kill -"$sig" "$job"
        ;;
    esac
    wait "$job"
    rc=$?
    log=$(cat "$tmp/log")
    out=$(cat "$tmp/out")
}
lacks() { ! contains "$1" "$2"; }
# stopped NAME LAUNCHER REQUEUE: the script passed SIGUSR1 to LAUNCHER, which
# forwarded it (mpirun never started its own abort, srun never killed its
# tasks), voltbatch stopped, the script exited 75 and asked for REQUEUE.
stopped() {
    local name=$1 launcher=$2 requeue=$3
    check "$name: $launcher got SIGUSR1 and forwarded it" contains "$log" "$launcher forwarded USR1"
    check "$name: voltbatch got SIGUSR1" contains "$log" "voltbatch got USR1"
    check "$name: the launcher did not abort" lacks "$log" "aborted on"
    check "$name: srun did not kill the tasks" lacks "$log" "killed on"
    check "$name: exit 75" [ "$rc" -eq 75 ]
    check "$name: $requeue" contains "$log" "$requeue"
}
printf 'n1\nn1\nn1\nn1\n' >"$tmp/nodefile"
pbs_env=(PBS_NODEFILE="$tmp/nodefile" PBS_O_WORKDIR="$tmp/work" PBS_JOBID=55.pbs)

# Slurm, srun: --signal=B:USR1@120 and scancel --batch --signal=TERM reach
# the shell; scancel --signal=TERM (no --batch) reaches the tasks.
run_stop slurm-1node.sbatch shell USR1
stopped "1node srun, USR1 to the shell" srun "scontrol requeue 78"
run_stop slurm-1node.sbatch shell TERM
stopped "1node srun, TERM to the shell" srun "scontrol requeue 78"
run_stop slurm-1node.sbatch group INT
stopped "1node srun, Ctrl-C" srun "scontrol requeue 78"
check "1node srun, Ctrl-C: srun never saw it (a single Ctrl-C only prints state)" \
    lacks "$log" "srun ignored"
run_stop slurm-1node.sbatch task TERM
check "1node srun, TERM to the tasks: voltbatch got it" contains "$log" "voltbatch got TERM"
check "1node srun, TERM to the tasks: exit 75 (srun returns the task's status)" [ "$rc" -eq 75 ]
check "1node srun, TERM to the tasks: requeued" contains "$log" "scontrol requeue 78"
# A second signal while voltbatch saves (the time limit's TERM after the
# early USR1) must not end the script's wait with 128+n.
run_stop slurm-1node.sbatch twice TERM FAKE_STOP_SECONDS=1
stopped "1node srun, USR1 then TERM while saving" srun "scontrol requeue 78"

# Slurm, mpirun: it aborts (exit 1) on SIGTERM or SIGINT of its own, so the
# script must send it SIGUSR1 and keep Ctrl-C away from it.
run_stop slurm-1node.sbatch shell USR1 LAUNCH=mpirun
stopped "1node mpirun, USR1 to the shell" mpirun "scontrol requeue 78"
run_stop slurm-1node.sbatch shell TERM LAUNCH=mpirun
stopped "1node mpirun, TERM to the shell" mpirun "scontrol requeue 78"
run_stop slurm-1node.sbatch shell INT LAUNCH=mpirun
stopped "1node mpirun, INT to the shell" mpirun "scontrol requeue 78"
run_stop slurm-1node.sbatch group INT LAUNCH=mpirun
stopped "1node mpirun, Ctrl-C" mpirun "scontrol requeue 78"
run_stop slurm-2node.sbatch shell TERM LAUNCH=mpirun SLURM_NTASKS=8
stopped "2node mpirun, TERM to the shell" mpirun "scontrol requeue 78"
run_stop slurm-2node.sbatch group INT LAUNCH=mpirun SLURM_NTASKS=8
stopped "2node mpirun, Ctrl-C" mpirun "scontrol requeue 78"
run_stop slurm-2node.sbatch shell USR1 SLURM_NTASKS=8
stopped "2node srun, USR1 to the shell" srun "scontrol requeue 78"

run_stop slurm-array.sbatch shell TERM SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
stopped "array, TERM to the shell" srun "scontrol requeue 90_3"
run_stop slurm-array.sbatch shell USR1 SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
stopped "array, USR1 to the shell" srun "scontrol requeue 90_3"
run_stop slurm-array.sbatch group INT SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_JOB_ID=90
stopped "array, Ctrl-C" srun "scontrol requeue 90_3"

# PBS: the script stops the run STOP_BEFORE seconds before the wall-time
# limit (qstat -f says 2:03 here, STOP_BEFORE 121: after 2 s), since PBS's
# own SIGTERM at the limit reaches mpirun too; with RESUBMIT set it submits
# itself again.
run_stop pbs-1node.pbs none - "${pbs_env[@]}" FAKE_WALLTIME=00:02:03 STOP_BEFORE=121
stopped "pbs, the wall-time timer" mpirun "mpirun -np 4 --hostfile $tmp/nodefile"
check "pbs, the wall-time timer: says how to resume" contains "$out" "qsub again to resume"
check "pbs, the wall-time timer: nothing resubmitted without RESUBMIT" \
    lacks "$log" "qsub"
run_stop pbs-1node.pbs shell TERM "${pbs_env[@]}" RESUBMIT=jobs/pbs-1node.pbs
stopped "pbs, TERM to the shell" mpirun \
    "qsub -v MODEL,INPUT,OUTPUT,TP,VOLTBATCH,STOP_BEFORE,RESUBMIT jobs/pbs-1node.pbs"
run_stop pbs-1node.pbs shell TERM "${pbs_env[@]}" RESUBMIT=jobs/pbs-1node.pbs FAKE_ROWS=0
check "pbs, stopped before any row: exit 75" [ "$rc" -eq 75 ]
check "pbs, stopped before any row: not submitted again" lacks "$log" "qsub"
check "pbs, stopped before any row: says why" contains "$out" "stopped before finishing a row"
run_stop pbs-1node.pbs none - "${pbs_env[@]}" FAKE_WALLTIME=00:01:00 STOP_BEFORE=120
check "pbs, wall time below STOP_BEFORE: warned" contains "$out" "hardly more than STOP_BEFORE"
run_stop pbs-1node.pbs shell USR1 "${pbs_env[@]}" FAKE_WALLTIME=04:00:00
stopped "pbs, qsig -s USR1" mpirun "mpirun -np 4"
run_stop pbs-1node.pbs group INT "${pbs_env[@]}"
stopped "pbs, Ctrl-C" mpirun "mpirun -np 4"
summary
