#!/usr/bin/env bash
# --stop memory follows the rows being generated, not the whole input:
# every queued row got its own stop matcher, with copies of the stop
# strings, when the rows were prepared, so 20,000 rows with 32 stop strings
# of 2,003 bytes held 1.37 GB before the first step (under an 800 MB
# address-space limit: exit 1, "preparing rows: out of memory"; 100,000
# rows with 32 stops of 108 bytes: 618 MB against 152 MB without them).
# The run's peak resident memory may exceed the same run's without --stop
# by less than 300 MB (it was 1.3 GB more). Against the run without stops,
# not a fixed figure: the base differs by machine (262 MB here, 643 MB on a
# GPU machine, CUDA's libraries loaded); and not under an address-space
# limit as test_logprobs_memory: CUDA's libraries map more than 800 MB at
# start-up, and stop strings enough for a 4 GB limit pass what Open MPI's
# start-up takes in arguments. Each row's prompt is the end-of-turn token, which the
# tiny model repeats greedily: every row stops after one token.
#
# usage: test_stop_memory.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 20000
stops=()
for i in $(seq 32); do
    stops+=(--stop "$(printf 's%02d%02000d' "$i" 0)")
done
run_peak "$vb" generate --device cpu --model model \
    --input p.h5 --output base.h5 --temperature 0 --max-new-tokens 4
read -r base_rc base_kib <<<"$out"
check "the same rows without --stop: exit 0 ($(tail -1 <<<"$err"))" [ "${base_rc:-1}" -eq 0 ]
run_peak "$vb" generate --device cpu --model model \
    --input p.h5 --output out.h5 --temperature 0 --max-new-tokens 4 "${stops[@]}"
read -r gen_rc peak_kib <<<"$out"
check "20,000 rows, 32 stop strings of 2,003 bytes: exit 0 ($(tail -1 <<<"$err"))" \
    [ "${gen_rc:-1}" -eq 0 ]
check "peak resident memory ${peak_kib:-?} KiB, under the run without stops' ${base_kib:-?} + 300 MB" \
    [ "${peak_kib:-999999999}" -lt $(( ${base_kib:-0} + 300000 )) ]
check "every row stopped after one token" [ "$(one_token_rows "$vb" out.h5)" = 20000 ]
summary
