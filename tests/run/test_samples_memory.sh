#!/usr/bin/env bash
# --n K queues K copies of a prompt no more: every sample was queued with a
# prompt of its own, so 20,000 prompts of ~1,000 token ids at --n 8 held
# 640 MB of prompts before the first step (740 MB resident on the tiny
# model, against 177 MB at --n 1; exit 1 under an 850 MB address-space
# limit, "setting up the queueing rows: out of memory"). The waiting
# samples of a row now share one copy until each is admitted (214 MB). The
# run is stopped (SIGTERM, exit 75) once rows reach the journal: the job
# would take minutes, and what is tested is that it starts and runs.
#
# What is checked: the --n 8 run's peak resident memory (VmHWM, read once
# rows reach the journal: the queueing is over by then) exceeds the same
# run's at --n 1 by less than 250 MB (37 MB with the fix, 563 MB before).
# Not a memory limit: what a process maps besides its own data differs by
# machine (CUDA's libraries, malloc arenas by core count), and a fixed
# limit that held here failed on a GPU machine.
#
# usage: test_samples_memory.sh VOLTBATCH MAKE_TINY_MODEL MAKE_IDS_INPUT
set -u
vb=$1
make_model=$2
make_input=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
"$make_input" in.h5 20000 300 --shared-prefix 1000 || { echo "make_ids_input failed"; exit 1; }
export VB_JOURNAL_FLUSH_SECONDS=0.2
# run_until_rows N OUT: generate at --n N until rows reach OUT's journal,
# then SIGTERM; sets grew (0 when they did), hwm (peak resident KiB then)
# and rc (the exit status)
run_until_rows() {
    "$vb" generate --device cpu --model model --input in.h5 --output "$2" \
        --max-new-tokens 1 --temperature 0.7 --n "$1" 2>"$2.err" &
    pid=$!
    # the header is ~1 KB, a one-token row's record ~70 bytes
    wait_for_journal "$2.journal" 8192 "$pid" 1200 0.1
    grew=$?
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
}
run_until_rows 1 base.h5
base_hwm=$hwm
check "20,000 rows at --n 1: rows finish ($(tail -1 base.h5.err))" [ "$grew" -eq 0 ]
run_until_rows 8 out.h5
check "20,000 rows of ~1,000 ids at --n 8: rows finish ($(tail -1 out.h5.err))" [ "$grew" -eq 0 ]
check "stopped with SIGTERM: exit 75 (got $rc)" [ "$rc" -eq 75 ]
check "peak ${hwm:-?} KiB at --n 8, under --n 1's ${base_hwm:-?} + 250 MB" \
    [ "${hwm:-999999999}" -lt $(( ${base_hwm:-0} + 250000 )) ]
"$vb" unpack out.h5 out.jsonl >/dev/null 2>&1
check "the stopped run's rows are in its output, one token each" \
    [ "$(cat out.jsonl 2>/dev/null | grep -c '"completion_tokens":1,')" -gt 100 ]
summary
