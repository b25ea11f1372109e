#!/usr/bin/env bash
# A stop signal (SIGTERM, SIGHUP) while unpack writes OUT.tmp ends it by
# that signal with neither OUT nor OUT.tmp left: unpack writes its rows as
# it reads them, and an OUT.tmp left behind made the next unpack refuse to
# start without --overwrite. unpack is held as it syncs OUT.tmp
# (stall_fsync_shim.c), OUT.tmp whole, so the signal certainly finds it.
# The next unpack then runs without --overwrite.
#
# usage: test_unpack_stop.sh VOLTBATCH STALL_SHIM
set -u
vb=$1 shim=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
for i in $(seq 0 99); do echo "{\"prompt\": \"p$i\", \"id\": $i}"; done >in.jsonl
"$vb" pack in.jsonl in.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }

for sig in TERM HUP; do
    rm -f out.jsonl out.jsonl.tmp held
    LD_PRELOAD=$shim STALL_SHIM_PATH='*/out.jsonl.tmp' STALL_SHIM_MARK=held \
        "$vb" unpack in.h5 out.jsonl 2>/dev/null &
    unpacker=$!
    for _ in $(seq 600); do
        [ -e held ] && break
        sleep 0.1
    done
    check "SIG$sig: unpack held with OUT.tmp written" [ -e held ] && [ -e out.jsonl.tmp ]
    kill -"$sig" "$unpacker"
    wait "$unpacker"
    rc=$?
    check "SIG$sig: unpack ends by the signal (status $rc)" [ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
    check "SIG$sig: no OUT.tmp left" [ ! -e out.jsonl.tmp ]
    check "SIG$sig: no output" [ ! -e out.jsonl ]
done
run_capture "$vb" unpack in.h5 out.jsonl
check "the next unpack runs without --overwrite (exit $rc)" [ "$rc" -eq 0 ]
check "and writes the 100 rows" [ "$(wc -l <out.jsonl)" = 100 ]
summary
