#!/usr/bin/env python3
"""Checks that IN.h5, pack's output for IN.jsonl, holds exactly the columns
the input schema gives those rows (pack.h): the text column (/prompts as
UTF-8 strings, or the byte form when a prompt holds a NUL; /messages as
JSON), /id (int64 when every row has an integer id, else strings with ""
for a row without one), /system ("" unset), /max_new_tokens and /seed (-1
unset), each only when some row has the key, and nothing else (no column
left over from a rewrite). Prints the first difference; exit 1 on any.
usage: check_pack_columns.py IN.jsonl IN.h5"""
import json
import sys

import h5py
import numpy as np

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
f = h5py.File(sys.argv[2], "r")
bad = []


def has(k):
    return any(r.get(k) is not None for r in rows)


want = {}
if "messages" in rows[0]:
    want["messages"] = ("str", [r["messages"] for r in rows])
else:
    texts = [r["prompt"] for r in rows]
    want["prompts"] = ("bytes" if any("\0" in t for t in texts) else "str", texts)
if has("id"):
    ids = [r.get("id") for r in rows]
    if all(isinstance(i, int) for i in ids):
        want["id"] = ("int64", ids)
    else:
        want["id"] = ("str", ["" if i is None else str(i) for i in ids])
if has("system"):
    want["system"] = ("str", [r.get("system") or "" for r in rows])
for k, t in (("max_new_tokens", "int32"), ("seed", "int64")):
    if has(k):
        want[k] = (t, [-1 if r.get(k) is None else r[k] for r in rows])

if sorted(f.keys()) != sorted(want):
    bad.append(f"datasets {sorted(f.keys())}, want {sorted(want)}")
for name, (kind, values) in want.items():
    if name not in f:
        continue
    d = f[name]
    if d.shape != (len(rows),):
        bad.append(f"/{name}: shape {d.shape}, want ({len(rows)},)")
        continue
    t = d.id.get_type()
    if kind == "str":
        ok = t.get_class() == h5py.h5t.STRING and t.is_variable_str() and \
            t.get_cset() == h5py.h5t.CSET_UTF8
    elif kind == "bytes":
        ok = t.get_class() == h5py.h5t.VLEN and t.get_super().get_size() == 1
    else:
        ok = d.dtype == np.dtype("<" + kind[0] + str(int(kind[-2:]) // 8))
    if not ok:
        bad.append(f"/{name}: type {d.dtype} ({t.get_class()}), want {kind}")
        continue
    if kind == "str":
        got = [s.decode("utf-8") for s in d[:]]
        if name == "messages":
            got = [json.loads(s) for s in got]
    elif kind == "bytes":
        got = [bytes(np.asarray(s, dtype=np.uint8)).decode("utf-8") for s in d[:]]
    else:
        got = d[:].tolist()
    for i, (g, w) in enumerate(zip(got, values)):
        if g != w:
            bad.append(f"/{name}[{i}]: {g!r}, want {w!r}")
            break
print("\n".join(bad) if bad else f"ok: {sorted(want)}")
sys.exit(1 if bad else 0)
