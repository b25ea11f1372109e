#!/usr/bin/env python3
"""Lists the calls into CUDA, cuBLAS, NCCL, MPI and HDF5 whose status is
thrown away: a call that is a whole statement (`MPI_Mrecv(...);`), where
nothing reads what it returned. The project's rule is that every such
call's status is checked (through MPI_CHECK / CUDA_CHECK, or compared
where it is made); this finds the ones that slipped, before a user's run
goes on past a failed receive or a failed collective as if it had worked.

usage: status_calls.py FILE...   (exit 1 and one line a call if any)

Not reported, each for a reason:
- a call cast to (void): a deliberate, visible discard (say why beside it);
- calls made while reporting or ending on another failure, where there is
  nothing better to do with a second one: MPI_Abort, MPI_Error_string,
  H5Ewalk2 (reading HDF5's error stack into a message), H5Eset_auto2
  (HDF5's own printing of errors), cudaGetLastError (called to clear the
  sticky status of a failure already handled);
- closes of HDF5 handles other than files (datasets, dataspaces, types,
  attributes, property lists): nothing is lost when one fails. A file's
  close writes what is buffered, so H5Fclose is checked like any call.
Results assigned (`rc = MPI_...`) or tested in place count as checked;
whether the assigned code is then looked at is for review, not for this.
"""
import re
import sys

LIBRARY_CALL = re.compile(
    r"\b(MPI_[A-Z][a-z]\w*|cuda[A-Z]\w*|cublas\w*|nccl[A-Z]\w*|H5[A-Z]{0,2}[a-z_]\w*|"
    r"cu[A-Z][a-z]\w*|nvrtc[A-Z]\w*|cupti[A-Z]\w*)\s*\(")
ALWAYS_ALLOWED = {"MPI_Abort", "MPI_Error_string", "MPI_Wtime", "H5Ewalk2", "H5Eset_auto2",
                  "cudaGetLastError"}
HANDLE_CLOSE = re.compile(r"H5[DSTAPGO]close$")


def blank(text):
    """text with its newlines kept and everything else made spaces"""
    return re.sub(r"[^\n]", " ", text)


def strip_code(src):
    """src with comments, string and character literals and preprocessor
    lines blanked, so that only code is matched (line numbers kept)"""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src[i] in "\"'":
            j = i + 1
            while j < n and src[j] != src[i] and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
        elif src[i] == "#" and src[src.rfind("\n", 0, i) + 1 : i].strip() == "":
            j = i
            while True:
                k = src.find("\n", j)
                if k < 0:
                    j = n
                    break
                if src[k - 1] == "\\":
                    j = k + 1
                    continue
                j = k
                break
        else:
            out.append(src[i])
            i += 1
            continue
        out.append(blank(src[i:j]))
        i = j
    return "".join(out)


def matching_open(code, close):
    """index of the '(' that the ')' at `close` ends, or -1"""
    depth = 0
    for j in range(close, -1, -1):
        if code[j] == ")":
            depth += 1
        elif code[j] == "(":
            depth -= 1
            if depth == 0:
                return j
    return -1


def statement_start(code, at):
    """'stmt' where the text before `at` ends a statement or a control
    header (so a call at `at` begins a statement), 'void' after a (void)
    cast, None otherwise"""
    k = at - 1
    while k >= 0 and code[k].isspace():
        k -= 1
    if k < 0 or code[k] in ";{}":
        return "stmt"
    word = re.search(r"(\w+)$", code[: k + 1])
    if word and word.group(1) in ("else", "do"):
        return "stmt"
    if code[k] == ")":
        j = matching_open(code, k)
        if j < 0:
            return None
        if re.fullmatch(r"\(\s*void\s*\)", code[j : k + 1]):
            return "void"
        before = re.search(r"(\w+)\s*$", code[:j])
        if before and before.group(1) in ("if", "for", "while"):
            return "stmt"
    return None


def call_is_statement(code, open_paren):
    """whether the call whose '(' is at open_paren is followed by ';'"""
    depth, j = 0, open_paren
    while j < len(code):
        if code[j] == "(":
            depth += 1
        elif code[j] == ")":
            depth -= 1
            if depth == 0:
                break
        j += 1
    j += 1
    while j < len(code) and code[j].isspace():
        j += 1
    return j < len(code) and code[j] == ";"


def unchecked_calls(path):
    with open(path, encoding="utf-8") as f:
        code = strip_code(f.read())
    found = []
    for m in LIBRARY_CALL.finditer(code):
        name = m.group(1)
        if name in ALWAYS_ALLOWED or HANDLE_CLOSE.match(name):
            continue
        if statement_start(code, m.start()) != "stmt":
            continue
        if call_is_statement(code, m.end() - 1):
            found.append((code.count("\n", 0, m.start()) + 1, name))
    return found


def main(paths):
    bad = 0
    for path in paths:
        for line, name in unchecked_calls(path):
            print(f"{path}:{line}: {name}: its status is not checked")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
