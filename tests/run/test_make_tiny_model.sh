#!/usr/bin/env bash
# make_tiny_model (README: `make_tiny_model --quant awq4|gptq8`, scripts/demo)
# refuses what it cannot do instead of writing another model: an option at
# the end without its value (a trailing --quant wrote an unquantized
# model), an unknown value, a seed that is not a number (it was seed 0).
set -u
tool=$1
# shellcheck source=../lib.sh
. "$TEST_LIB"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_capture "$tool" "$dir/a" --quant
check "a trailing --quant exits 2" [ "$rc" -eq 2 ]
check "a trailing --quant: names it" contains "$err" "--quant needs a value"
check "a trailing --quant: no model written" [ ! -e "$dir/a/config.json" ]
run_capture "$tool" "$dir/b" --quant awq5
check "--quant awq5 exits 2" [ "$rc" -eq 2 ]
check "--quant awq5: names it" contains "$err" "'--quant awq5'"
run_capture "$tool" "$dir/c" --seed x
check "--seed x exits 2" [ "$rc" -eq 2 ]
check "--seed x: names it" contains "$err" "--seed takes a non-negative integer"
run_capture "$tool"
check "no directory: the usage names --quant" contains "$err" "[--quant awq4|gptq8]"
run_capture "$tool" "$dir/d" --seed 7 --layers 1
check "a good command line: exit 0" [ "$rc" -eq 0 ]
check "a good command line: the model" [ -e "$dir/d/config.json" ]
summary
