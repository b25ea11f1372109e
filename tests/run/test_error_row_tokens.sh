#!/usr/bin/env bash
# An error row's /prompt_tokens is its prompt's token count whatever the
# prompt's kind: a text or /messages row refused for another of its values
# (a negative /max_new_tokens or /seed, an /id that is not UTF-8) said 0,
# while the same row of /input_ids kept its count. Each bad row here has a
# good twin with the same prompt; their prompt_tokens must agree.
#
# usage: test_error_row_tokens.sh VOLTBATCH MAKE_TINY_MODEL
set -u
vb=$1
make_model=$2
# shellcheck source=../lib.sh
. "$TEST_LIB"
require_h5py

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$make_model" model >/dev/null || { echo "make_tiny_model failed"; exit 1; }
python3 - <<'PY' || exit 1
import json
import h5py
import numpy as np
s = h5py.string_dtype()
msgs = lambda t: json.dumps([{"role": "user", "content": t}])
for name, key, conv in (("text", "prompts", lambda t: t), ("messages", "messages", msgs)):
    with h5py.File(f"{name}.h5", "w") as f:
        # rows 0/1, 2/3, 4/5: good, then the same prompt refused
        texts = ["hello there", "hello there", "the capital", "the capital", "abc", "abc"]
        f.create_dataset(key, data=[conv(t) for t in texts], dtype=s)
        f.create_dataset("max_new_tokens", data=np.array([2, -2, 2, 2, 2, 2], np.int32))
        f.create_dataset("seed", data=np.array([-1, -1, 1, -5, -1, -1], np.int64))
        ids = [b"a", b"b", b"c", b"d", b"e", b"\xff"]
        f.create_dataset("id", data=ids, dtype=h5py.string_dtype("utf-8"))
PY
for kind in text messages; do
    chat=()
    [ "$kind" = messages ] && chat=(--chat)
    run_capture "$vb" generate --device cpu --model model --input "$kind.h5" --output "out_$kind.h5" \
        --temperature 0 --max-new-tokens 2 "${chat[@]}"
    check "$kind: exit 0" [ "$rc" -eq 0 ]
    verdict=$(python3 - "out_$kind.h5" <<'PY'
import sys
import h5py
f = h5py.File(sys.argv[1], "r")
pt, fin = f["prompt_tokens"][:], f["finish_reason"][:]
bad = [i for i in (1, 3, 5) if not (fin[i] == 2 and fin[i - 1] != 2 and pt[i] == pt[i - 1] > 0)]
print("ok" if not bad else "rows %s: prompt_tokens %s" % (bad, list(pt)))
PY
)
    check "$kind: refused rows count their prompt tokens ($verdict)" [ "$verdict" = ok ]
done

summary
