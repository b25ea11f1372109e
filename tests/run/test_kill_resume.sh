#!/usr/bin/env bash
# Never lose finished work (issue #5): a run under mpirun -np 4 (tp 2, dp 2)
# is killed with SIGKILL at three random points, resumed each time, then
# stopped with SIGTERM (exit 75) and resumed to the end; the output must
# equal an uninterrupted run row for row (ids, finish reasons), with no row
# missing or doubled. Between the last two, a second run on the output
# while its journal is locked (another run still going) is refused. Kill points are random on purpose ($RANDOM, printed).
#
# usage: test_kill_resume.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT [ROWS]
# rc and err are set by run_capture in tests/lib.sh.
# shellcheck disable=SC2154
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
rows=${5:-2000}
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py
dir=$(mktemp -d)
# Signals go only to this test's ranks (other tests may run voltbatch at
# the same time): they are the processes whose command line names $out_h5
# (not $out: run_capture in tests/lib.sh sets that).
out_h5="$dir/run.h5"
trap 'pkill -9 -f "^$vb generate.* --output $out_h5" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" in.h5 "$rows" 300 || { echo "make_ids_input failed"; exit 1; }

# Rows reach the journal's file every 0.2 s here (5 s by default), so that
# short runs have something on disk to lose.
export VB_JOURNAL_FLUSH_SECONDS=0.2
args=(generate --model model --input in.h5 --device cpu --tp 2 --temperature 0.7 --seed 11
      --max-new-tokens 24 --max-batch 32)
t0=$(date +%s%N)
run_capture "$mpirun" -np 4 "$vb" "${args[@]}" --output ref.h5
t1=$(date +%s%N)
check "uninterrupted run exits 0" [ "$rc" -eq 0 ]
ms=$(((t1 - t0) / 1000000))
echo "uninterrupted run: $ms ms"

# Waits until the journal has grown past $1 bytes (rows are being finished),
# at most 600 polls 0.05 s apart, so the random kill lands mid-generation,
# not in start-up. (journal_size, wait_for_journal: tests/lib.sh)
journal_bytes() { journal_size run.h5.journal; }
wait_for_rows() { wait_for_journal run.h5.journal "$1" "$2" 600 0.05; } # BYTES PID
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# Three SIGKILLs of every rank at random points (the node died, or the
# scheduler's hard kill), each followed by a --resume.
resume=()
for i in 1 2 3; do
    before=$(journal_bytes)
    "$mpirun" -np 4 "$vb" "${args[@]}" --output "$out_h5" "${resume[@]}" >"log$i" 2>&1 &
    launcher=$!
    wait_for_rows "$((before > 512 ? before : 512))" "$launcher"
    delay=$((RANDOM % (ms / 4 + 1)))
    sleep_ms "$delay"
    pkill -9 -f "^$vb generate.* --output $out_h5" || true
    wait "$launcher" 2>/dev/null
    echo "kill $i: $delay ms after new rows appeared; journal $before -> $(journal_bytes) bytes"
    # (or, rarely on a fast machine, the run finished before the kill)
    check "kill $i: the journal kept growing" bash -c "[ $(journal_bytes) -gt $before ] || [ -e run.h5 ]"
    resume=(--resume)
done

# A time limit: SIGTERM to every rank, as Slurm does; exit 75.
before=$(journal_bytes)
"$mpirun" -np 4 "$vb" "${args[@]}" --output "$out_h5" --resume >log4 2>&1 &
launcher=$!
wait_for_rows "$before" "$launcher"
delay=$((RANDOM % (ms / 4 + 1)))
sleep_ms "$delay"
pkill -TERM -f "^$vb generate.* --output $out_h5" || true
wait "$launcher"
term_rc=$?
echo "SIGTERM $delay ms after new rows: mpirun exit $term_rc"
[ "$term_rc" -eq 0 ] && echo "note: the run finished before SIGTERM arrived"
check "SIGTERM: exit 75" bash -c "[ $term_rc -eq 75 ] || [ $term_rc -eq 0 ]"
check "SIGTERM: finished rows saved in the output" [ -e run.h5 ]

# unpack of the stopped run's output says it is incomplete (exit 0: the
# finished rows are unpacked); of the complete one at the end, nothing.
run_capture "$vb" unpack run.h5 part.jsonl
check "unpack of a stopped run's output exits 0 ($err)" [ "$rc" -eq 0 ]
if [ "$term_rc" -eq 75 ]; then
    check "unpack of a stopped run's output says it is incomplete" \
        contains "$err" "run.h5 is incomplete:"
fi

# One run per output: while another process holds the journal's lock (a
# first run still going when its job is requeued), a second run is
# refused with exit 2 before it touches anything, --resume or
# --overwrite. flock(1) holds the lock here, as a running generate does.
if [ -e run.h5.journal ] && command -v flock >/dev/null; then
    cp run.h5 held.h5
    cp run.h5.journal held.h5.journal
    # the holder is the sleep itself (fd 9 locked, then exec): killing it
    # drops the lock (flock(1) FILE CMD would leave it with CMD's child)
    bash -c 'exec 9<"$1" && flock -x 9 && exec sleep 600' _ run.h5.journal &
    holder=$!
    for _ in $(seq 200); do # until the holder has the lock (flock -n fails)
        flock -n run.h5.journal true || break
        sleep 0.05
    done
    for mode in --resume --overwrite; do
        run_capture "$mpirun" -np 4 "$vb" "${args[@]}" --output "$out_h5" "$mode"
        check "journal locked: $mode exits 2 (got $rc)" [ "$rc" -eq 2 ]
        check "journal locked: $mode says another run writes it" \
            contains "$err" "run.h5.journal is locked: another voltbatch run is writing this output"
        check "journal locked: $mode left the output and journal as they were" \
            bash -c "cmp -s run.h5 held.h5 && cmp -s run.h5.journal held.h5.journal"
    done
    kill "$holder"
    wait "$holder" 2>/dev/null
else
    echo "note: the SIGTERM run finished (no journal) or no flock(1): lock check skipped"
fi

run_capture "$mpirun" -np 4 "$vb" "${args[@]}" --output "$out_h5" --resume
check "final --resume exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || echo "$err" | tail -5

run_capture "$vb" unpack run.h5 whole.jsonl
check "unpack of the complete output exits 0 ($err)" [ "$rc" -eq 0 ]
check "unpack of the complete output: no incompleteness note" \
    eval '! contains "$err" "is incomplete"'

compare=$(compare_outputs ref.h5 run.h5)
echo "compare: $compare"
check "resumed output equals the uninterrupted one" [ "${compare%% *}" = same ]
check "every row present" [ "${compare##* }" = "$rows" ]
summary
