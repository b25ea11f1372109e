#!/bin/bash
# Every CUDA, cuBLAS, NCCL, MPI and HDF5 call in src/ and kernels/ has its
# status checked (tests/unit/status_calls.py says which calls it exempts
# and why). The checker is shown first to catch what it must on a fixture,
# and to pass the checked forms, so it cannot pass by seeing nothing.
# usage: test_status_checked.sh SRC_ROOT
set -u
root=$1
checker=$root/tests/unit/status_calls.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/unchecked.c" <<'C'
static void f(MPI_Message *m, char *buf, int n, void *a, const void *b, hid_t file, int x)
{
    MPI_Mrecv(buf, n, MPI_BYTE, m, MPI_STATUS_IGNORE);
    if (x)
        cudaMemcpy(a, b, (size_t)n, cudaMemcpyDefault);
    else H5Fclose(file);
    ncclAllReduce(a, a, (size_t)n, ncclHalf, ncclSum,
                  comm, stream);
}
C
cat > "$tmp/checked.c" <<'C'
#define FREE_IT(p) cudaFree(p);
static int g(MPI_Request *req, int *flag, hid_t d, hid_t s, int c, void *p)
{
    /* MPI_Send(p, 1, MPI_INT, 0, 0, MPI_COMM_WORLD); in a comment */
    const char *text = "cudaFree(p);";
    MPI_CHECK(MPI_Bcast(p, 1, MPI_INT, 0, MPI_COMM_WORLD));
    int rc = MPI_Allreduce(MPI_IN_PLACE, p, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (MPI_Test(req, flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return -1;
    (void)MPI_Initialized(flag); /* deliberate */
    H5Dclose(d);
    H5Sclose(s);
    hid_t f = c ? -1 : H5Fcreate(text, 0, 0, 0);
    return rc + (int)f;
}
C
fail=0
if out=$(python3 "$checker" "$tmp/unchecked.c"); then
    echo "FAIL: the checker passed a file of unchecked calls"
    fail=1
fi
for want in "unchecked.c:3: MPI_Mrecv" "unchecked.c:5: cudaMemcpy" "unchecked.c:6: H5Fclose" \
    "unchecked.c:7: ncclAllReduce"; do
    grep -q "$want" <<<"$out" || { echo "FAIL: the checker missed $want: $out"; fail=1; }
done
[ "$(wc -l <<<"$out")" = 4 ] || { echo "FAIL: want 4 findings, got: $out"; fail=1; }
if ! out=$(python3 "$checker" "$tmp/checked.c"); then
    echo "FAIL: the checker refused checked or exempt calls: $out"
    fail=1
fi
[ $fail = 0 ] || exit 1

cd "$root" || exit 1
if ! python3 "$checker" src/*/*.c src/*/*.h src/*.c kernels/*.cu kernels/*.cuh kernels/*.h; then
    echo "FAIL: calls above throw their status away; check them (MPI_CHECK, CUDA_CHECK, or"
    echo "compare the result), or cast to (void) with the reason beside it"
    exit 1
fi
echo "ok: every library call's status in src/ and kernels/ is checked"
