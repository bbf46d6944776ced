# Shared by scripts/test and scripts/lab: install missing Debian packages, pick a build dir.
# Sourced, not run.

# The Debian 12 packages every build needs (compiler, CMake, Eigen, xtensor, Boost, Catch2, benchmark;
# python3 runs benchmarks/compare-peers, which ctest smoke-tests; CLI11 parses the lab's command line).
SELFREPLAY_BUILD_PACKAGES=(g++ cmake make libeigen3-dev libxtensor-dev libboost-dev catch2 libbenchmark-dev python3 libcli11-dev)

# The libtorch adapter's tests and examples/torch_lab (scripts/test, scripts/lab torch): libtorch-dev
# (~825 MB, ~2 min to install), OpenBLAS in place of the reference BLAS that libtorch would
# otherwise load through libblas.so.3, and jemalloc for torch_lab (see docs/torch.md).
SELFREPLAY_TORCH_PACKAGES=(libtorch-dev libopenblas0-pthread libjemalloc-dev)
# The lab across processes (scripts/lab --ranks N, the lab_mpi_ranks test): OpenMPI.
SELFREPLAY_MPI_PACKAGES=(libopenmpi-dev openmpi-bin)
# The libFuzzer harnesses (scripts/fuzz, and scripts/test unless --no-fuzz): clang 14 and its runtime.
SELFREPLAY_FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)
# The API reference (scripts/docs, and the ctest api_reference when doxygen is installed).
SELFREPLAY_DOCS_PACKAGES=(doxygen)
# scripts/test also builds everything with a second compiler, the libtorch adapter's tests, the
# API reference (ctest api_reference: Doxygen without warnings) and the lab under MPI.
SELFREPLAY_TEST_PACKAGES=("${SELFREPLAY_BUILD_PACKAGES[@]}" clang-14 "${SELFREPLAY_TORCH_PACKAGES[@]}"
                          "${SELFREPLAY_DOCS_PACKAGES[@]}" "${SELFREPLAY_MPI_PACKAGES[@]}")

# ensure_packages PKG...: installs those not yet installed with apt-get (idempotent).
# As root it installs them; otherwise it prints the exact command and exits with status 1.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "selfreplay: missing Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "selfreplay: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# Parallel build jobs: the number of cores.
SELFREPLAY_JOBS=$(nproc 2>/dev/null || echo 2)

# The lab's arithmetic, fixed across CPUs: its training runs are chaotic (whether the toy's `add`
# task is learnt within its steps depends on the last bits of every sum), so the documented
# numbers hold bit for bit only for one instruction set. Every CPU with AVX2 + FMA (x86-64-v3:
# Zen 3, Zen 5, Intel since Haswell) builds the lab for x86-64-v3, whatever else it has
# (AVX-512 changes Eigen's summation order), tuned for Zen 3 (the tuning changes GCC's
# vectorisation and so the rounding; Zen 3 is where docs/lab.md's tables were made); older CPUs
# get -march=native.
# The library's own kernels choose their SIMD path at run time, so the lab pins them to the same
# path, avx2 (SELFREPLAY_ISA; a caller's own setting wins).
lab_has_avx2() { grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; }
lab_arch_args() {
  if lab_has_avx2; then
    echo "-DSELFREPLAY_ARCH=x86-64-v3 -DSELFREPLAY_TUNE=znver3"
  else
    echo "-DSELFREPLAY_ARCH= -DSELFREPLAY_TUNE= -DSELFREPLAY_NATIVE=ON"
  fi
}
