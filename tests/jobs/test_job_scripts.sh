#!/usr/bin/env bash
# The job scripts in jobs/: each passes `bash -n` and shellcheck (when
# installed), and the Slurm ones run with srun, mpirun, scontrol and
# voltbatch replaced by shims that record and check what they are given:
# the launcher's options, the voltbatch arguments, --resume when a journal
# exists, SIGUSR1 passed on to voltbatch, and a requeue after exit 75; the
# two-node layouts (tp within a node / dp across nodes, tp across nodes)
# under srun and mpirun; the PBS one's mpirun line.
set -u
jobs=$1
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

# Shims: each appends its argv to a log; srun/mpirun run the command after
# their options the way a launcher would (here: once, in this shell).
mkdir -p "$tmp/bin"
cat >"$tmp/bin/srun" <<'SH'
#!/usr/bin/env bash
echo "srun $*" >>"$SHIM_LOG"
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
SH
cat >"$tmp/bin/mpirun" <<'SH'
#!/usr/bin/env bash
echo "mpirun $*" >>"$SHIM_LOG"
while [ $# -gt 0 ]; do
    case $1 in -np | --map-by | --bind-to | --hostfile) shift 2 ;; *) break ;; esac
done
exec "$@"
SH
cat >"$tmp/bin/scontrol" <<'SH'
#!/usr/bin/env bash
echo "scontrol $*" >>"$SHIM_LOG"
SH
# The voltbatch shim exits with $FAKE_STATUS, or waits for SIGUSR1 and
# exits 75 (what voltbatch does) when FAKE_WAIT_SIGNAL is set.
cat >"$tmp/bin/voltbatch" <<'SH'
#!/usr/bin/env bash
echo "voltbatch $*" >>"$SHIM_LOG"
if [ -n "${FAKE_WAIT_SIGNAL:-}" ]; then
    trap 'echo "voltbatch got USR1" >>"$SHIM_LOG"; exit 75' USR1
    touch "$FAKE_WAIT_SIGNAL"
    for _ in $(seq 100); do sleep 0.1; done
    exit 1
fi
exit "${FAKE_STATUS:-0}"
SH
chmod +x "$tmp/bin/"*

run_job() { # script, then env assignments
    local script=$1
    shift
    : >"$tmp/log"
    (cd "$tmp/work" && env PATH="$tmp/bin:$PATH" SHIM_LOG="$tmp/log" SLURM_NTASKS=4 \
        SLURM_JOB_ID=77 VOLTBATCH=voltbatch "$@" bash "$jobs/$script" >/dev/null 2>&1)
    rc=$?
    log=$(cat "$tmp/log")
}
mkdir -p "$tmp/work"

run_job slurm-1node.sbatch FAKE_STATUS=0
check "1node: exit 0" [ "$rc" -eq 0 ]
check "1node: srun with PMIx and 4 tasks" contains "$log" "srun --mpi=pmix --ntasks=4 --gpus-per-task=1"
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

run_job slurm-1node.sbatch FAKE_STATUS=0 LAUNCH=mpirun
check "1node mpirun: exit 0" [ "$rc" -eq 0 ]
check "1node mpirun: 4 ranks, 4 per node" contains "$log" "mpirun -np 4 --map-by ppr:4:node"

# SIGUSR1 to the batch shell (what --signal=B:USR1@120 does) reaches voltbatch.
: >"$tmp/log"
(cd "$tmp/work" && exec env PATH="$tmp/bin:$PATH" SHIM_LOG="$tmp/log" SLURM_NTASKS=4 SLURM_JOB_ID=78 \
    VOLTBATCH=voltbatch FAKE_WAIT_SIGNAL="$tmp/started" bash "$jobs/slurm-1node.sbatch" >/dev/null 2>&1) &
job=$!
for _ in $(seq 50); do [ -e "$tmp/started" ] && break; sleep 0.1; done
sleep 0.2
kill -USR1 "$job"
wait "$job"
rc=$?
log=$(cat "$tmp/log")
check "USR1: voltbatch received it" contains "$log" "voltbatch got USR1"
check "USR1: job exits 75" [ "$rc" -eq 75 ]
check "USR1: requeued" contains "$log" "scontrol requeue 78"

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

summary
