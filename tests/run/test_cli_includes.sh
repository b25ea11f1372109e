#!/bin/bash
# The command line stays on top (issue #25): below src/cli/ and src/main.c
# nothing includes a cli/ header; the run is handed a run_config
# (src/run/run_config.h) instead. Tests of cli/ code itself may include
# what they test.
# usage: test_cli_includes.sh SRC_ROOT
set -u
root=$1
cd "$root" || exit 1
found=$(grep -rn '#[[:space:]]*include[[:space:]]*"cli/' src kernels |
        grep -v '^src/cli/\|^src/main\.c:')
if [ -n "$found" ]; then
    echo "FAIL: cli/ headers included below the command layer:"
    echo "$found"
    exit 1
fi
# a test including a cli/ header must be a test of cli/ code (test_cli_*)
found=$(grep -rln '#[[:space:]]*include[[:space:]]*"cli/' tests | grep -v '/test_cli_[^/]*\.c$')
if [ -n "$found" ]; then
    echo "FAIL: tests other than cli/ tests include cli/ headers:"
    echo "$found"
    exit 1
fi
echo "ok: no cli/ header below the command layer"
