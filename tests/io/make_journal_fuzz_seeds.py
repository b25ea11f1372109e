#!/usr/bin/env python3
"""Seeds for tests/io/fuzz_journal.c (scripts/fuzz-journal): journals in
the fuzz target's input form (3 shape bytes, then u16-length records; the
row records laid out as src/io/row_codec.h says), written into
tests/io/fuzz_journal_corpus/.

usage: tests/io/make_journal_fuzz_seeds.py [OUT_DIR]"""
import os
import struct
import sys


def s(b):
    """a str field: u32 length + bytes, or absent (None)"""
    if b is None:
        return struct.pack("<I", 0xFFFFFFFF)
    return struct.pack("<I", len(b)) + b


def row(index, sample, fin, ids, completion=b"ok", error=b"", rid=None, lp=None, top=None):
    out = b"R" + struct.pack("<qiBiiq", index, sample, fin, 5, len(ids), 0)
    out += s(completion) + s(error) + s(rid)
    out += struct.pack("<I", len(ids)) + struct.pack("<%di" % len(ids), *ids)
    if lp is None:
        out += b"\x00"
    else:
        out += b"\x01" + struct.pack("<%df" % len(lp), *lp)
    if top is None:
        out += struct.pack("<I", 0)
    else:
        tid, tlp = top
        out += struct.pack("<I", len(tid)) + struct.pack("<%di" % len(tid), *tid)
        out += struct.pack("<%df" % len(tlp), *tlp)
    return out


def records(*payloads):
    return b"".join(struct.pack("<H", len(p)) + p for p in payloads)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "fuzz_journal_corpus")
    os.makedirs(out, exist_ok=True)
    header = b'H{"model":"m","seed":1}'
    # byte 1: samples - 1 in bits 0-1, top_n + 1 in bits 2-4
    seeds = {
        "plain": bytes([4, 0 | (0 << 2), 1]) + records(header, row(0, 0, 0, [1, 2, 3]),
                                                       row(3, 0, 1, [7])),
        "logprobs": bytes([2, 0 | (1 << 2), 1]) + records(
            header, row(1, 0, 0, [4, 5], lp=[-0.5, -1.25])),
        "top2": bytes([2, 1 | (3 << 2), 1]) + records(
            header, row(0, 1, 0, [4, 5], lp=[-0.5, -1.0], top=([4, 9, 5, 8], [-0.5, -2, -1, -3]))),
        "error_row": bytes([3, 0, 1]) + records(header, row(2, 0, 2, [], completion=b"",
                                                            error=b"prompt too long", rid=b"r2")),
        "nul_text": bytes([1, 0, 1]) + records(header, row(0, 0, 0, [1], completion=b"a\x00b")),
        "torn": bytes([2, 0, 1]) + records(header, row(0, 0, 0, [1, 2]))[:-3],
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
