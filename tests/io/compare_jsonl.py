#!/usr/bin/env python3
"""Compares the pack input with the unpack output row by row. Lossless in
the schema's sense: every field with a value comes back identical; an
optional string field that was "" (or absent) is absent after the trip
(the HDF5 schema stores both as "")."""
import json
import sys

def normal(row):
    return {k: v for k, v in row.items() if not (k in ("id", "system") and v == "")}

a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
if len(a) != len(b):
    sys.exit(f"row count {len(a)} != {len(b)}")
for i, (x, y) in enumerate(zip(a, b)):
    if normal(x) != y:
        sys.exit(f"row {i}: {x!r} != {y!r}")
print(f"{len(a)} rows identical")
