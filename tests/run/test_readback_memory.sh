#!/usr/bin/env bash
# Reading an output back without holding its rows twice (--resume) or at
# all (unpack). --resume read every column at once into HDF5's buffers,
# copied those rows into a results of the file's own shape, and that again
# into the run's, so the peak was about twice the rows (a --resume of 300,000 rows of 2 KB
# took 1.32 GB). The rows now go straight into the run's results, a block
# of 8192 at a time.
#
# The output is made by a run whose output write fails (the disk "fills
# up": tests/io/enospc_shim.c), so every row is in its journal alone; a
# --resume then writes the output from the journal, and a second --resume
# reads that output (every row done: nothing is generated). Each row is
# one token with --logprobs 64 (~520 bytes of token data a row). Checked:
# the second --resume's peak resident memory above a --resume of a
# 100-row output stays under 1.7 times the output file's size (1.3 times
# with the fix, 2.1 before); against a baseline run of the same tool, not
# a fixed figure, which would depend on the machine (CUDA's libraries).
#
# The journal was read whole into one buffer (grown by doubling) beside
# the rows decoded from it, and read twice (the settings first). It is
# read a record at a time now: in a build without CUDA the --resume from
# the journal alone (116 MB) peaked 70 MB above the one from the output
# before and level with it after. In a CUDA-linked build the peak of that
# run is its output write (the rows written from the journal's), ~55 MB
# above the reading, so the two runs cannot be compared there; the
# journal's run is held to the output's bound (1.7 times the output above
# the 100-row run), which the old reader exceeded only without CUDA.
#
# unpack read the whole output the same way before writing a line (328 MB
# for this output, against 15 MB for 100 rows); it writes each block's
# rows as it reads them now (the rows of a file voltbatch wrote are in
# order; another writer's are still read whole and sorted): under a
# quarter of the output's size above the 100-row unpack (14 MB).
#
# And the rows are the same after each --resume.
#
# usage: test_readback_memory.sh VOLTBATCH MAKE_TINY_MODEL ENOSPC_SHIM
set -u
vb=$1
make_model=$2
shim=$3
# shellcheck source=../lib.sh
. "$TEST_LIB"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
eot_input "$vb" 200000
head -n 100 p.jsonl >small.jsonl
"$vb" pack small.jsonl small.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
opts=(--device cpu --model model --temperature 0 --max-new-tokens 4 --logprobs 64)

run_capture env LD_PRELOAD="$shim" ENOSPC_SHIM_PATH='*out.h5.tmp' \
    "$vb" generate "${opts[@]}" --input p.h5 --output out.h5
check "200,000 rows, the output's write refused: exit 1, the rows in the journal ($(tail -1 <<<"$err"))" \
    [ "$rc" -eq 1 ] && [ -s out.h5.journal ] && [ ! -e out.h5 ]
journal_kib=$(( $(stat -c %s out.h5.journal) / 1024 ))
run_peak "$vb" generate "${opts[@]}" --input p.h5 --output out.h5 --resume
read -r j_rc j_kib <<<"$out"
check "--resume from the journal alone: exit 0 ($(tail -1 <<<"$err"))" [ "${j_rc:-1}" -eq 0 ]
"$vb" unpack out.h5 first.jsonl >/dev/null 2>&1

"$vb" generate "${opts[@]}" --input small.h5 --output small_out.h5 >/dev/null 2>&1 || { echo "the 100-row run failed"; exit 1; }
run_peak "$vb" generate "${opts[@]}" --input small.h5 --output small_out.h5 --resume
read -r base_rc base_kib <<<"$out"
check "--resume of a 100-row output: exit 0 ($(tail -1 <<<"$err"))" [ "${base_rc:-1}" -eq 0 ]

out_kib=$(( $(stat -c %s out.h5) / 1024 ))
run_peak "$vb" generate "${opts[@]}" --input p.h5 --output out.h5 --resume
read -r o_rc o_kib <<<"$out"
check "--resume of the whole output: exit 0 ($(tail -1 <<<"$err"))" [ "${o_rc:-1}" -eq 0 ]
check "its peak ${o_kib:-?} KiB, above the 100-row one's ${base_kib:-?}, under 1.7 x the output's ${out_kib} KiB" \
    [ $(( (${o_kib:-999999999} - ${base_kib:-0}) * 10 )) -lt $(( out_kib * 17 )) ]
check "the --resume from the journal's peak ${j_kib:-?} KiB, above the 100-row one's ${base_kib:-?}, under 1.7 x the output's ${out_kib} KiB" \
    [ $(( (${j_kib:-999999999} - ${base_kib:-0}) * 10 )) -lt $(( out_kib * 17 )) ]
run_peak "$vb" unpack small_out.h5 small.out.jsonl
read -r ubase_rc ubase_kib <<<"$out"
run_peak "$vb" unpack out.h5 second.jsonl
read -r u_rc u_kib <<<"$out"
check "unpack of the output: exit 0 ($(tail -1 <<<"$err"))" [ "${u_rc:-1}" -eq 0 ] && \
    [ "${ubase_rc:-1}" -eq 0 ]
check "its peak ${u_kib:-?} KiB, above the 100-row one's ${ubase_kib:-?}, under a quarter of the output's ${out_kib} KiB" \
    [ $(( (${u_kib:-999999999} - ${ubase_kib:-0}) * 4 )) -lt "$out_kib" ]
check "every row stopped after one token, with its logprobs" [ "$(grep -c \
    '"finish_reason":"stop","error":"","prompt_tokens":1,"completion_tokens":1,.*"logprobs":\[-' \
    second.jsonl)" = 200000 ]
check "the same rows after each --resume" cmp -s first.jsonl second.jsonl
summary
