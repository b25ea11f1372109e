#!/bin/bash
# No function in src/run/ over 80 lines (issue #25: a run loop you can read
# in one sitting). First the checker is shown to catch what it must: an
# 81-line function fails, an 80-line one passes, whatever the layout of
# its signature; then src/run/*.c is checked.
# usage: test_function_length.sh SRC_ROOT
set -u
root=$1
checker=$root/tests/run/function_length.awk
limit=80
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fixture FILE NAME BODY_LINES STYLE: a function of 2 + BODY_LINES + 1 lines
# (signature of two lines, body, closing brace) with its brace on its own
# line (STYLE=own) or after the signature (STYLE=same)
fixture() {
    local file=$1 name=$2 body=$3 style=$4
    {
        echo "/* a fixture */"
        echo "static const int table[] = {"
        echo "    1, 2,"
        echo "};"
        echo "int helper(int x);"
        echo ""
        if [ "$style" = own ]; then
            echo "static int $name(int a,"
            echo "                 int b)"
            echo "{"
            body=$((body - 1))
        else
            echo "static int"
            echo "$name(int a, int b) {"
        fi
        for ((i = 0; i < body - 1; i++)); do
            echo "    a += b; /* { not a brace at column 0 */"
        done
        echo "    return a;"
        echo "}"
    } > "$file"
}

fail=0
for style in own same; do
    fixture "$tmp/long_$style.c" too_long $((limit - 2)) "$style"
    fixture "$tmp/ok_$style.c" just_right $((limit - 3)) "$style"
    if out=$(awk -v limit=$limit -f "$checker" "$tmp/long_$style.c"); then
        echo "FAIL: the checker missed an $((limit + 1))-line function ($style brace)"
        fail=1
    elif ! grep -q "too_long is $((limit + 1)) lines" <<<"$out"; then
        echo "FAIL: the checker misreported ($style brace): $out"
        fail=1
    fi
    if ! out=$(awk -v limit=$limit -f "$checker" "$tmp/ok_$style.c"); then
        echo "FAIL: the checker refused a $limit-line function ($style brace): $out"
        fail=1
    fi
done
[ $fail = 0 ] || exit 1

if ! awk -v limit=$limit -f "$checker" "$root"/src/run/*.c; then
    echo "FAIL: functions in src/run/ over $limit lines (above); split them by job"
    exit 1
fi
echo "ok: no function in src/run/ over $limit lines"
