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
# The limit is on the data segment (ulimit -d: heap and private mappings),
# not the address space, which a voltbatch linked with CUDA's libraries
# exceeds in libraries alone; the build before the fix fails it still.
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
bash -c 'ulimit -d 850000 && exec "$@"' _ "$vb" generate --device cpu --model model \
    --input in.h5 --output out.h5 --max-new-tokens 1 --temperature 0.7 --n 8 2>err.txt &
pid=$!
# the header is ~1 KB, a one-token row's record ~70 bytes
wait_for_journal out.h5.journal 8192 "$pid" 1200 0.1
grew=$?
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
check "20,000 rows of ~1,000 ids at --n 8 in 850 MB: rows finish ($(tail -1 err.txt))" \
    [ "$grew" -eq 0 ]
check "stopped with SIGTERM: exit 75 (got $rc)" [ "$rc" -eq 75 ]
"$vb" unpack out.h5 out.jsonl >/dev/null 2>&1
check "the stopped run's rows are in its output, one token each" \
    [ "$(cat out.jsonl 2>/dev/null | grep -c '"completion_tokens":1,')" -gt 100 ]
summary
