#!/usr/bin/env bash
# `meson setup` with HDF5 or NCCL absent stops with one line naming the
# package to install. "Absent" is simulated by pointing the lookup at an
# empty prefix, through the option and through the environment variable.
set -u
src=$1
# shellcheck source=../lib.sh
. "$TEST_LIB"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/empty"

errors_in() { grep -c 'ERROR:' <<<"$1"; }

run_capture meson setup "$tmp/b1" "$src" -Dcuda=disabled -Dhdf5_home="$tmp/empty"
check "hdf5_home=empty: setup fails" [ "$rc" -ne 0 ]
check "hdf5_home=empty: names the packages" contains "$out" "HDF5 not found: install libhdf5-dev (Debian) or hdf5 (Spack)"
check "hdf5_home=empty: one error line" [ "$(errors_in "$out")" -eq 1 ]

run_capture env HDF5_HOME="$tmp/empty" meson setup "$tmp/b2" "$src" -Dcuda=disabled
check "HDF5_HOME=empty: setup fails" [ "$rc" -ne 0 ]
check "HDF5_HOME=empty: names the variable" contains "$out" "HDF5_HOME/HDF5_ROOT/HDF5_DIR=$tmp/empty"

cuda_bin=""
if command -v nvcc >/dev/null; then
    cuda_bin=$(dirname "$(command -v nvcc)")
elif [ -x /usr/local/cuda/bin/nvcc ]; then
    cuda_bin=/usr/local/cuda/bin
fi
if [ -n "$cuda_bin" ]; then
    run_capture env PATH="$cuda_bin:$PATH" meson setup "$tmp/b3" "$src" -Dcuda=enabled -Dnccl_home="$tmp/empty"
    check "nccl_home=empty: setup fails" [ "$rc" -ne 0 ]
    check "nccl_home=empty: names the packages" contains "$out" "NCCL not found: install libnccl-dev (Debian, NVIDIA repo) or nccl (Spack)"
    check "nccl_home=empty: one error line" [ "$(errors_in "$out")" -eq 1 ]
    run_capture env PATH="$cuda_bin:$PATH" NCCL_HOME="$tmp/empty" meson setup "$tmp/b4" "$src" -Dcuda=enabled
    check "NCCL_HOME=empty: setup fails" [ "$rc" -ne 0 ]
    check "NCCL_HOME=empty: names NCCL" contains "$out" "NCCL not found"
else
    echo "skip NCCL cases: no nvcc on PATH or in /usr/local/cuda (NCCL is only looked for with CUDA)"
fi

# The working configuration still sets up, so the failures above are the
# empty prefix's doing and not a broken meson.build.
run_capture meson setup "$tmp/b5" "$src" -Dcuda=disabled
check "default lookup: setup succeeds" [ "$rc" -eq 0 ]

summary
