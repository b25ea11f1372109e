#!/usr/bin/env bash
# The environment knobs are read in one place and documented: the VB_*
# names of src/util/env.c's table are exactly those of README's knob table;
# nothing else in src/ or kernels/ reads the environment or names a VB_*
# variable the table lacks (in a string, or as NAME= in a comment or help
# text); and a bad value stops `generate` and `bench` with exit 2 and one
# line naming the variable, before MPI starts.
# Usage: test_env_knobs.sh SOURCE_ROOT VOLTBATCH
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
root=$1
vb=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
cd "$root" || exit 1

# the table: rows between "knobs[] = {" and "};", one name a row
table=$(sed -n '/^static const vb_knob knobs\[\] = {/,/^};/p' src/util/env.c |
    grep -oE '^ *(\{|[A-Z_]+_KNOB\()"[A-Z_][A-Z0-9_]*"' | grep -oE '[A-Z_][A-Z0-9_]*' | sort -u)
table_vb=$(printf '%s\n' "$table" | grep '^VB_')
# README: the names in the first column of the rows that start with `VB_
readme=$(grep -E '^\| *`VB_' README.md | cut -d'|' -f2 | grep -oE 'VB_[A-Z0-9_]+' | sort -u)

check "the table has the VB_ knobs" [ "$(printf '%s\n' "$table_vb" | grep -c .)" -ge 18 ]
check "the table has TMPDIR, HOME, XDG_CACHE_HOME" \
    [ "$(printf '%s\n' "$table" | grep -cxE 'TMPDIR|HOME|XDG_CACHE_HOME')" -eq 3 ]
for k in $table_vb; do
    check "$k is in README's knob table" grep -qx "$k" <<<"$readme"
done
for k in $readme; do
    check "README's $k is a knob of src/util/env.c" grep -qx "$k" <<<"$table_vb"
done

# the one reading of the environment
readers=$(grep -rlE 'getenv|environ\b' src kernels | grep -vx 'src/util/env.c')
check "only src/util/env.c reads the environment${readers:+ (also: $readers)}" [ -z "$readers" ]

# every VB_ name in a string literal, and every NAME= in text, is a knob
named=$( {
    grep -rhoE '"([^"\\]|\\.)*"' src kernels | grep -oE '\bVB_[A-Z0-9_]+'
    grep -rhoE '\bVB_[A-Z0-9_]+=' src kernels | tr -d =
    grep -oE '\bVB_[A-Z0-9_]+' README.md
} | sort -u)
for k in $named; do
    check "$k (named in src/, kernels/ or README) is a knob" grep -qx "$k" <<<"$table_vb"
done

# a bad value: exit 2, one line, the variable and what it takes
run_capture env VB_GEMV_MAX_ROWS=9 "$vb" generate --model m --input i --output o
check "generate: a bad knob exits 2" [ "$rc" -eq 2 ]
check "generate: a bad knob is one line" one_line "$err"
check "generate: it names the variable, value and range" \
    contains "$err" "VB_GEMV_MAX_ROWS=9: want a whole number from 0 to 8"
run_capture env VB_STEP_SYNC=yes "$vb" bench --model m
check "bench: a bad knob exits 2" [ "$rc" -eq 2 ]
check "bench: it names the variable and the choices" \
    contains "$err" "VB_STEP_SYNC=yes: want one of 1, 0, events"
run_capture env VB_JOURNAL_FLUSH_SECONDS=0 "$vb" generate --model m --input i --output o
check "generate: a zero flush interval exits 2" [ "$rc" -eq 2 ]
summary
