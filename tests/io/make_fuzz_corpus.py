#!/usr/bin/env python3
"""Writes the seed corpus of the HDF5 input reader's fuzzer
(tests/io/fuzz_input_reader.c) into DIR (default tests/io/fuzz_corpus):
one tiny valid input file of each kind the reader takes, three rows each.

  prompts_vlen.h5     /prompts, /id and per-row /system as variable-length
                      UTF-8 strings, /max_new_tokens int32, /seed int64
                      (the layout `voltbatch pack` writes)
  prompts_fixed.h5    /prompts fixed-length, null-padded; /id int64; a
                      scalar /system
  prompts_chunked.h5  /prompts chunked and deflate-compressed, a scalar
                      fixed-length /system, space-padded fixed /id
  input_ids.h5        /input_ids variable-length int32, /max_new_tokens
  input_ids64.h5      /input_ids variable-length int64, int32 /id
  messages.h5         /messages (JSON chat arrays), scalar vlen /system

The files use HDF5's earliest format (no metadata checksums), as pack's
do, so that mutations reach the datasets rather than stop at a checksum.
Needs h5py and numpy."""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fuzz_corpus")
os.makedirs(out, exist_ok=True)
utf8 = h5py.string_dtype("utf-8")
prompts = ["première", "second ✓", "third"]


def new(name):
    return h5py.File(os.path.join(out, name), "w", libver="earliest")


with new("prompts_vlen.h5") as f:
    f.create_dataset("prompts", data=np.array(prompts, dtype=object), dtype=utf8)
    f.create_dataset("id", data=np.array(["a", "", "c"], dtype=object), dtype=utf8)
    f.create_dataset("system", data=np.array(["Be brief.", "", "sé"], dtype=object), dtype=utf8)
    f.create_dataset("max_new_tokens", data=np.array([7, -1, 0], dtype=np.int32))
    f.create_dataset("seed", data=np.array([11, -1, 2**40], dtype=np.int64))

with new("prompts_fixed.h5") as f:
    f.create_dataset("prompts", data=np.array([p.encode() for p in prompts], dtype="S12"))
    f.create_dataset("id", data=np.array([10, 20, 30], dtype=np.int64))
    f.create_dataset("system", data="Réponds.", dtype=utf8)

with new("prompts_chunked.h5") as f:
    f.create_dataset("prompts", data=np.array(prompts, dtype=object), dtype=utf8,
                     chunks=(2,), compression="gzip")
    sp = h5py.h5t.C_S1.copy()
    sp.set_size(4)
    sp.set_strpad(h5py.h5t.STR_SPACEPAD)
    ids = f.create_dataset("id", (3,), dtype=h5py.Datatype(sp))
    ids[...] = np.array([b"x", b"yy", b"zzz"], dtype="S4")
    f.create_dataset("system", data=np.array(b"sys", dtype="S3"))

with new("input_ids.h5") as f:
    d = f.create_dataset("input_ids", (3,), dtype=h5py.vlen_dtype(np.dtype("int32")))
    d[0] = np.array([1, 2, 3], dtype=np.int32)
    d[1] = np.array([], dtype=np.int32)
    d[2] = np.array([1000, 1001], dtype=np.int32)
    f.create_dataset("max_new_tokens", data=np.array([4, -1, 2], dtype=np.int64))

with new("input_ids64.h5") as f:
    d = f.create_dataset("input_ids", (2,), dtype=h5py.vlen_dtype(np.dtype("int64")))
    d[0] = np.array([5, 2**31 - 1], dtype=np.int64)
    d[1] = np.array([42], dtype=np.int64)
    f.create_dataset("id", data=np.array([1, 2], dtype=np.int32))

with new("messages.h5") as f:
    msgs = ['[{"role": "user", "content": "hi"}]',
            '[{"role": "system", "content": "sé"}, {"role": "user", "content": "x"}]',
            '[{"role": "user"}]']
    f.create_dataset("messages", data=np.array(msgs, dtype=object), dtype=utf8)
    f.create_dataset("system", data="Be kind.", dtype=utf8)
