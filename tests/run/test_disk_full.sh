#!/usr/bin/env bash
# A full disk under `generate` (issue #23), on the CPU backend under mpirun,
# made by enospc_shim (tests/io/enospc_shim.c, LD_PRELOAD): writes to the
# files matching ENOSPC_SHIM_PATH fail with ENOSPC (or EIO) once
# ENOSPC_SHIM_AFTER bytes are written. No mount, no privileges.
#  1. the output's temporary file fills up at the final write: exit 1, not
#     a crash at exit (139), one message naming the file, the reason and
#     the space needed; no temporary file left; the journal holds every
#     row, so a --resume without the fault writes the output without
#     generating anything, equal to an uninterrupted run;
#  2. the journal fills up (or fails with EIO) mid-run, with two groups:
#     the run stops within a few steps of it (steps and rows counted, not
#     seconds), exit 1 naming the journal; the rows finished by then are in
#     the output, and a --resume completes it, equal to the uninterrupted
#     run.
#
# usage: test_disk_full.sh VOLTBATCH MPIRUN MAKE_TINY_MODEL MAKE_IDS_INPUT ENOSPC_SHIM
# shellcheck disable=SC2154  # rc and err are set by run_capture in tests/lib.sh
set -u
vb=$1
mpirun=$2
make_model=$3
make_input=$4
shim=$5
# shellcheck source=../lib.sh
. "$TEST_LIB"
python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: python3 with h5py needed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
rows=400
"$make_model" model >/dev/null && "$make_input" in.h5 "$rows" 300 || exit 1
args=(generate --device cpu --model model --input in.h5 --tp 2 --temperature 0.7 --seed 5
      --max-new-tokens 24 --max-batch 32)
# the shim's settings reach every rank through mpirun -x
full() { # PATTERN BYTES ERRNO MPIRUN-ARGUMENTS...
    local pattern=$1 bytes=$2 errno=$3
    shift 3
    run_capture "$mpirun" -x LD_PRELOAD="$shim" -x ENOSPC_SHIM_PATH="$pattern" \
        -x ENOSPC_SHIM_AFTER="$bytes" -x ENOSPC_SHIM_ERRNO="$errno" "$@"
}
report_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
h5_rows() { python3 -c 'import h5py, sys; print(len(h5py.File(sys.argv[1], "r")["index"]))' "$1"; }
journal_rows() { # distinct rows in a journal's intact records
    python3 - "$1" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"VBJRNL01", "bad magic"
at, rows = 8, set()
while at + 8 <= len(d):
    n, crc = struct.unpack_from("<II", d, at)
    p = d[at + 8:at + 8 + n]
    if len(p) < n or zlib.crc32(p) != crc:
        break
    if p[:1] == b"R":
        rows.add(struct.unpack_from("<qi", p, 1))
    at += 8 + n
print(len(rows))
PY
}
same_as_ref() {
    python3 - ref.h5 "$1" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
ia, ib = a["index"][:], b["index"][:]
ok = len(ib) == len(set(ib.tolist())) and sorted(ia.tolist()) == sorted(ib.tolist())
pos = {int(i): k for k, i in enumerate(ia)}
ok = ok and all(np.array_equal(a["output_ids"][pos[int(i)]], b["output_ids"][k])
                for k, i in enumerate(ib))
print("same" if ok else "different")
PY
}

run_capture "$mpirun" -np 2 "$vb" "${args[@]}" --output ref.h5 --report ref.json
check "uninterrupted run exits 0" [ "$rc" -eq 0 ]
ref_steps=$(python3 -c 'import json; print(json.load(open("ref.json"))["group0"]["steps"])')
ref_bytes=$(stat -c %s ref.h5)
echo "uninterrupted run: $ref_steps steps, $ref_bytes bytes of output"

# 1. The output fills up: half of it fits, so HDF5 fails at the close.
full '*/out.h5.tmp' "$((ref_bytes / 2))" ENOSPC -np 2 "$vb" "${args[@]}" --output "$dir/out.h5"
echo "$err" | grep -E "voltbatch generate: rank|Segmentation|signal" | head -3
check "output full: exit 1 (not 139, a crash at exit)" [ "$rc" -eq 1 ]
check "output full: the message names the file, the reason and the space needed" \
    grep -qE "rank 0: writing the output: .*/out\.h5\.tmp: .*No space left on device.*needs about [0-9.]+ KiB" <<<"$err"
check "output full: the message says the journal holds every row" \
    grep -qE "every finished row is in .*/out\.h5\.journal: make room, then rerun with --resume" <<<"$err"
check "output full: no temporary file and no output left" \
    bash -c '[ ! -e out.h5.tmp ] && [ ! -e out.h5 ]'
check "output full: the journal holds every row" [ "$(journal_rows out.h5.journal)" -eq "$rows" ]
run_capture "$mpirun" -np 2 "$vb" "${args[@]}" --output "$dir/out.h5" --resume --report out.json
check "output full: --resume with room exits 0" [ "$rc" -eq 0 ]
check "output full: --resume generated nothing" [ "$(report_field out.json rows_this_run)" -eq 0 ]
check "output full: the output equals the uninterrupted run" [ "$(same_as_ref out.h5)" = same ]
check "output full: the journal is gone with the output complete" [ ! -e out.h5.journal ]

# 2. The journal fills up after its header and a few rows, with two groups
# (-np 4, tp 2): rank 0's group stops at once and tells group 1.
journal_full() { # NAME ERRNO REASON
    local name=$1 errno=$2 reason=$3 step
    full "*/$name.h5.journal" 3000 "$errno" -np 4 "$vb" "${args[@]}" --output "$dir/$name.h5"
    echo "$err" | grep -E "voltbatch generate: rank|Segmentation|signal" | head -3
    check "$name: exit 1" [ "$rc" -eq 1 ]
    check "$name: the message names the journal and the reason" \
        grep -qE "rank 0: writing the journal: .*/$name\.h5\.journal: .*$reason" <<<"$err"
    step=$(grep -oE "the run stopped after step [0-9]+" <<<"$err" | grep -oE "[0-9]+$")
    echo "$name: stopped after step ${step:-?} of $ref_steps"
    check "$name: stopped within a quarter of the steps" [ "${step:-$ref_steps}" -lt "$((ref_steps / 4))" ]
    # group 1 alone finishes half the rows when nothing stops it
    check "$name: both groups stopped: the output holds under half the rows" \
        [ "$(h5_rows "$name.h5" 2>/dev/null || echo "$rows")" -lt "$((rows / 2))" ]
    run_capture "$mpirun" -np 4 "$vb" "${args[@]}" --output "$dir/$name.h5" --resume
    check "$name: --resume exits 0" [ "$rc" -eq 0 ]
    check "$name: the resumed output equals the uninterrupted run" [ "$(same_as_ref "$name.h5")" = same ]
}
journal_full jfull ENOSPC "No space left on device"
journal_full jeio EIO "Input/output error"
summary
