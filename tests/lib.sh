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

one_line() { [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ] && [ -n "$1" ]; }
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
