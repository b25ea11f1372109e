# Prints "FILE:LINE: NAME is N lines (limit L)" for every C function
# definition longer than `limit` lines, counted from the first line of its
# signature to its closing brace, both included; exits 1 when there is one.
#
# It reads the layout the tree is written in (clang-format): a function's
# signature starts at column 0, its body opens with "{" at column 0 (or
# ") {" ending a column-0 signature) and closes with "}" at column 0.
# Struct types and initializers open with "= {" or "struct x {" and are not
# functions. Invoke: awk -v limit=80 -f function_length.awk FILE...
function report(name, first, last,    n) {
    n = last - first + 1
    if (n > limit) {
        printf "%s:%d: %s is %d lines (limit %d)\n", FILENAME, first, name, n, limit
        bad = 1
    }
}
FNR == 1 { sig_first = 0; in_body = 0; prev = "" }
# a signature begins: a column-0 line with an identifier followed by "("
!in_body && /^[A-Za-z_][A-Za-z0-9_ \t\*]*[A-Za-z0-9_]+[ \t]*\(/ && !/;[ \t]*$/ {
    sig_first = FNR
    # GNU layout: the return type alone on the line before the name
    if (prev ~ /^[A-Za-z_][A-Za-z0-9_ \t\*]*$/)
        sig_first = FNR - 1
    line = $0
    sub(/[ \t]*\(.*/, "", line)
    n = split(line, words, /[ \t\*]+/)
    sig_name = words[n]
}
# the body opens
!in_body && sig_first && (/^\{[ \t]*$/ || /^[^ \t].*\)[ \t]*\{[ \t]*$/) {
    in_body = 1
    prev = $0
    next
}
# a declaration or anything else at column 0 ends a pending signature
!in_body && /;[ \t]*$/ && !/^[ \t]/ { sig_first = 0 }
in_body && /^\}/ {
    report(sig_name, sig_first, FNR)
    in_body = 0
    sig_first = 0
}
{ prev = $0 }
END { exit bad }
