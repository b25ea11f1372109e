# Shell test helpers: sourced by the shell tests, which call `check` and end
# with `summary` ("N passed, N failed", exit 1 on any failure).
passed=0
failed=0

# check NAME CONDITION...: runs the condition, counts and reports it.
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
    fi
}

# run_capture CMD...: runs CMD, leaves status in $rc, stdout in $out, stderr in $err.
run_capture() {
    local o e
    o=$(mktemp) e=$(mktemp)
    "$@" >"$o" 2>"$e"
    rc=$?
    out=$(cat "$o")
    err=$(cat "$e")
    rm -f "$o" "$e"
}

# eot_input VOLTBATCH N: p.h5 in the current folder, N rows whose prompt is
# the end-of-turn token, which the tiny model (make_tiny_model) repeats
# greedily: every row stops after one token, so a run of many rows is
# cheap and what it holds is the bookkeeping. Fails the test if pack does.
eot_input() {
    yes '{"prompt": "<|im_end|>"}' | head -n "$2" >p.jsonl
    "$1" pack p.jsonl p.h5 >/dev/null 2>&1 || { echo "pack failed"; exit 1; }
}

# one_token_rows VOLTBATCH OUT.h5 [MORE]: how many of OUT's rows stopped
# after one token of a one-token prompt (MORE: a pattern the rest of the
# row's JSON must match, as '.*"logprobs":\[-').
one_token_rows() {
    "$1" unpack "$2" "$2.jsonl" >/dev/null 2>&1
    grep -c "\"finish_reason\":\"stop\",\"error\":\"\",\"prompt_tokens\":1,\"completion_tokens\":1,${3:-}" \
        "$2.jsonl"
}

# run_peak CMD...: run_capture of CMD; then $out is "RC KIB": CMD's exit
# status and its peak resident memory in KiB (getrusage of the children:
# what a memory test compares with a baseline run's, where a fixed limit
# would depend on the machine).
run_peak() {
    run_capture python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

one_line() { [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ] && [ -n "$1" ]; }
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# --- runs that are stopped and resumed (tests/run/test_kill_resume.sh,
# test_stop_signals.sh) --------------------------------------------------

# require_h5py: skips the test (exit 77) without python3's h5py, which
# compare_outputs reads the outputs with.
require_h5py() {
    if ! python3 -c 'import h5py' 2>/dev/null; then
        echo "python3 with h5py not found (pip install h5py); skipping"
        exit 77
    fi
}

# journal_size JOURNAL: its size in bytes, 0 while it does not exist.
journal_size() {
    if [ -e "$1" ]; then stat -c %s "$1"; else echo 0; fi
}

# wait_for_journal JOURNAL BYTES PID POLLS INTERVAL: waits until JOURNAL has
# grown past BYTES (rows are being finished), polling POLLS times INTERVAL
# seconds apart; fails when PID ends first or the time runs out.
wait_for_journal() {
    local journal=$1 bytes=$2 pid=$3 polls=$4 interval=$5
    for _ in $(seq "$polls"); do
        [ "$(journal_size "$journal")" -gt "$bytes" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep "$interval"
    done
    return 1
}

# compare_outputs REF RUN: prints "same N" when output RUN holds the rows of
# output REF, each once, with the same output_ids and finish reasons (N:
# RUN's rows); else what differs, then N.
compare_outputs() {
    python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
ref, run = (h5py.File(p, "r") for p in sys.argv[1:3])
ri, ui = ref["index"][:], run["index"][:]
problems = []
if len(ui) != len(set(ui.tolist())):
    problems.append("doubled rows")
if set(ri.tolist()) != set(ui.tolist()):
    problems.append(f"rows differ: {len(set(ri.tolist()) ^ set(ui.tolist()))}")
rmap = {int(i): k for k, i in enumerate(ri)}
bad = 0
for k, i in enumerate(ui):
    j = rmap.get(int(i))
    if j is None:
        continue
    if (not np.array_equal(ref["output_ids"][j], run["output_ids"][k]) or
            ref["finish_reason"][j] != run["finish_reason"][k]):
        bad += 1
if bad:
    problems.append(f"{bad} rows with other tokens")
print("same" if not problems else "; ".join(problems), len(ui))
PY
}

# True once no process matches pattern $1, within 15 s: mpirun can return
# while a rank it signalled is still saving its rows and exiting (seen once
# on a busy CI machine); a rank still there after that is left behind.
gone_soon() { # PATTERN
    local t
    for t in $(seq 150); do
        pgrep -f "$1" >/dev/null || return 0
        sleep 0.1
    done
    echo "still running after $((t / 10)) s: $(pgrep -af "$1" | head -2)"
    return 1
}

# --- outputs read through `voltbatch unpack` (the GPU machine has neither
# h5dump nor, always, h5py) ------------------------------------------------

# output_ids VOLTBATCH FILE.h5 [KEY]: one line per output row, "KEY : ids...
# finish_reason", sorted by KEY (index, the default, or id: the input's
# /id column, for files whose rows were in another order).
output_ids() {
    local j
    j=$(mktemp --suffix=.jsonl) # its own: two calls may read one file at once
    "$1" unpack "$2" "$j" --overwrite >/dev/null 2>&1 || { echo "unpack failed: $2"; rm -f "$j"; return; }
    python3 -c '
import json, sys
key = sys.argv[2]
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in sorted(rows, key=lambda r: r[key]):
    print(r[key], ":", " ".join(map(str, r.get("output_ids") or [])), r.get("finish_reason"))
' "$j" "${3:-index}"
    rm -f "$j"
}

# same_output_rows VOLTBATCH A.h5 B.h5 [KEY]: how many rows have the same
# line (ids and finish reason) in both
same_output_rows() {
    comm -12 <(output_ids "$1" "$2" "${4:-index}" | sort) <(output_ids "$1" "$3" "${4:-index}" | sort) | wc -l
}
