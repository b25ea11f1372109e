#!/usr/bin/env bash
# Model directories as users have them on disk, and what voltbatch must do
# with each (defects found by trying to break the loading):
# - a Hugging Face cache snapshot (snapshots/REV/FILE -> ../../blobs/HASH)
#   runs; copied with cp -r, or with a blob deleted, its files are
#   symbolic links to nothing. Each such file is named as a broken link and
#   the run exits 2: config.json was "cannot read it (is --model a Hugging
#   Face model directory?)", model.safetensors "no model.safetensors", and a
#   broken generation_config.json or tokenizer_config.json was skipped as
#   absent (its eos ids, sampling defaults and chat template dropped
#   without a word).
#
# usage: test_model_dir.sh VOLTBATCH MAKE_TINY_MODEL FIXTURES_DIR
set -u
# shellcheck source=../lib.sh
. "$TEST_LIB"
vb=$1 make_tiny=$2 fx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$make_tiny" "$tmp/base" >/dev/null || { echo "make_tiny_model failed"; exit 1; }
printf '{"prompt":"Hello world"}\n' >"$tmp/p.jsonl"
"$vb" pack "$tmp/p.jsonl" "$tmp/p.h5" >/dev/null 2>&1 || { echo "pack failed"; exit 1; }

# snapshot SRC DST: DST/snapshots/rev holds SRC's files as the hub cache
# does, relative links into DST/blobs
snapshot() {
    mkdir -p "$2/blobs" "$2/snapshots/rev"
    local f n=0
    for f in "$1"/*; do
        n=$((n + 1))
        cp "$f" "$2/blobs/blob$n"
        ln -s "../../blobs/blob$n" "$2/snapshots/rev/$(basename "$f")"
    done
}

gen() { # MODEL: a greedy run of p.h5
    rm -f "$tmp/o.h5" "$tmp/o.h5.journal"
    "$vb" generate --model "$1" --input "$tmp/p.h5" --output "$tmp/o.h5" \
        --device cpu --temperature 0 --max-new-tokens 2
}

snapshot "$tmp/base" "$tmp/hub"
run_capture gen "$tmp/hub/snapshots/rev"
check "a hub cache snapshot runs" [ "$rc" -eq 0 ]

# broken_link DIR FILE COMMAND...: FILE named as a link to nothing, exit 2
broken_link() {
    local dir=$1 file=$2
    shift 2
    run_capture "$@"
    [ "$rc" -eq 2 ] && contains "$err" "$dir/$file: a symbolic link to" &&
        contains "$err" "which does not exist" || { echo "  exit $rc: $err"; return 1; }
}

cp -r "$tmp/hub/snapshots/rev" "$tmp/copied" # the links, not the blobs
check "a snapshot copied with cp -r: config.json named as a broken link" \
    broken_link "$tmp/copied" config.json "$vb" inspect --model "$tmp/copied"

# one FILE of a snapshot whose blob is gone
one_broken() { # FILE: a fresh snapshot with FILE's link pointing at nothing
    rm -rf "$tmp/one"
    snapshot "$tmp/base" "$tmp/one"
    ln -sfn ../../blobs/gone "$tmp/one/snapshots/rev/$1"
}
one_broken model.safetensors
check "a broken model.safetensors link is named (not 'no model.safetensors')" \
    broken_link "$tmp/one/snapshots/rev" model.safetensors \
    "$vb" inspect --model "$tmp/one/snapshots/rev" --check-weights
one_broken generation_config.json
check "a broken generation_config.json is refused, not skipped" \
    broken_link "$tmp/one/snapshots/rev" generation_config.json \
    "$vb" inspect --model "$tmp/one/snapshots/rev"
one_broken tokenizer_config.json
check "a broken tokenizer_config.json is refused, not skipped" \
    broken_link "$tmp/one/snapshots/rev" tokenizer_config.json \
    gen "$tmp/one/snapshots/rev"
one_broken tokenizer.json
check "a broken tokenizer.json is named as a broken link" \
    broken_link "$tmp/one/snapshots/rev" tokenizer.json gen "$tmp/one/snapshots/rev"

# a sharded checkpoint whose second shard's blob is gone
rm -rf "$tmp/sharded"
snapshot "$fx/qwen2-untied-bf16-sharded" "$tmp/sharded"
ln -sfn ../../blobs/gone "$tmp/sharded/snapshots/rev/model-00002-of-00003.safetensors"
check "a broken shard link is named" \
    broken_link "$tmp/sharded/snapshots/rev" model-00002-of-00003.safetensors \
    "$vb" inspect --model "$tmp/sharded/snapshots/rev" --check-weights

summary
