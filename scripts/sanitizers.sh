#!/usr/bin/env bash
# Fuzzing and sanitizer runs, each in a build directory of its own (./build is not touched):
#   fuzz  build-fuzz, clang-14 with -fsanitize=address,undefined and libFuzzer: every target of
#         tests/fuzz runs for MSWA_FUZZ_SECONDS (default 30) from its seed corpus (ctest -L fuzz)
#   asan  build-asan, g++ with -fsanitize=address,undefined: the unit tests, engine_test and
#         server_test (whose mswa-server processes are sanitized too)
#   tsan  build-tsan, g++ with -fsanitize=thread: engine_test and server_test
#   bash scripts/sanitizers.sh              all three, in that order
#   bash scripts/sanitizers.sh asan tsan    some of them
#   MSWA_JOBS=N                             parallel compile jobs (default 2)
#   MSWA_FUZZ_SECONDS=S                     how long each fuzz target runs (default 30)
# Only the targets a run needs are built. LibTorch, OpenMP, gRPC and the other system libraries
# are not instrumented; tests/sanitizers/*.supp suppress what is reported inside them, never in
# the project's code. Any report fails the run: the tests' own exit codes and report files
# written by any process (including the servers the tests start) are both checked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${MSWA_JOBS:-2}
SUPP=$ROOT/tests/sanitizers

# -O1 -g1: symbolized reports at a fraction of -O3's compile time; asserts stay on.
COMMON=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1"
        -DMSWA_BUILD_BENCH=OFF -DMSWA_CUDA=OFF)
UBSAN_FLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined"

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1:suppressions=$SUPP/asan.supp
export LSAN_OPTIONS=suppressions=$SUPP/lsan.supp:print_suppressions=0
# history_size=7: the longest access history, so that both stacks of a report are restored and
# the suppressions can match them.
export TSAN_OPTIONS=suppressions=$SUPP/tsan.supp:halt_on_error=1:history_size=7:second_deadlock_stack=1

seconds() { date +%s; }

# Tests left out of a sanitized run, as gtest filters: [binary] for every sanitizer,
# [sanitizer:binary] for one. The SentencePiece wrapper is dlopen()ed with RTLD_DEEPBIND (see
# sentencepiece_shim.h), which the sanitizer runtimes refuse; the regular build runs those
# tests. Under TSan, scoring 5 MB in one stream (a test of the numbers and progress, one
# stream) took 207 of server_test's 232 s; the tests of streams, cancellation and draining
# still run there, and ASan and the regular build run the 5 MB one.
declare -A GTEST_FILTER=(
  [tokenizer_test]='-SentencePieceTokenizer.*:LoadTokenizer.*SentencePiece*'
  [tsan:server_test]='-ServerTest.ScoreStreamOfFiveMegabytesMatchesAndReportsProgress'
)

# Runs test binaries one after another with sanitizer reports also written to $3/reports;
# fails when a binary fails or any process left a report. $1: the sanitizer (asan, tsan).
run_tests() {
  local sanitizer=$1 build=$2 logs=$3; shift 3
  rm -rf "$logs"; mkdir -p "$logs/reports"
  local failed=0
  for test in "$@"; do
    local start; start=$(seconds)
    if ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$logs/reports/asan \
       TSAN_OPTIONS=$TSAN_OPTIONS:log_path=$logs/reports/tsan \
       UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$logs/reports/ubsan \
       "$build/tests/$test" --gtest_brief=1 \
         "--gtest_filter=${GTEST_FILTER[$sanitizer:$test]:-${GTEST_FILTER[$test]:-*}}" \
         > "$logs/$test.log" 2>&1; then
      echo "  $test: passed in $(( $(seconds) - start )) s"
    else
      echo "  $test: FAILED in $(( $(seconds) - start )) s; last lines of $logs/$test.log:"
      tail -n 40 "$logs/$test.log"
      failed=1
    fi
  done
  if compgen -G "$logs/reports/*" > /dev/null; then
    for report in "$logs"/reports/*; do
      echo "== sanitizer report $report"
      head -n 80 "$report"
    done
    failed=1
  fi
  return $failed
}

run_fuzz() {
  local start; start=$(seconds)
  mkdir -p build-fuzz
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz "${COMMON[@]}" \
    -DMSWA_FUZZ_SECONDS="${MSWA_FUZZ_SECONDS:-30}" \
    "-DCMAKE_C_FLAGS=-fsanitize=address,fuzzer-no-link $UBSAN_FLAGS -fno-omit-frame-pointer" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,fuzzer-no-link $UBSAN_FLAGS -fno-omit-frame-pointer" \
    > build-fuzz/configure.log
  # The target list is read whole before it is searched: `grep -q` in a pipe stops reading at
  # the first match, and under pipefail the generator's SIGPIPE would fail the check.
  local targets; targets=$(cmake --build build-fuzz --target help)
  if ! grep -q '^mswa_fuzzers' <<< "$targets"; then
    echo "fuzz: clang-14 cannot link -fsanitize=fuzzer (libclang-rt-14-dev missing?)" >&2
    return 1
  fi
  cmake --build build-fuzz -j "$JOBS" --target mswa_fuzzers
  echo "fuzz: built in $(( $(seconds) - start )) s"
  start=$(seconds)
  # The fuzzers replay their seeds (and every committed crash) first, then mutate.
  (cd build-fuzz && ctest -L fuzz -j "$JOBS" --output-on-failure)
  echo "fuzz: ran in $(( $(seconds) - start )) s"
}

run_asan() {
  local start; start=$(seconds)
  local tests=(model_core_test tokenizer_test kv_cache_manager_test sampler_test scheduler_test
               kernels_test engine_test server_test)
  mkdir -p build-asan
  cmake -S . -B build-asan "${COMMON[@]}" -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
    "-DCMAKE_C_FLAGS=-fsanitize=address $UBSAN_FLAGS -fno-omit-frame-pointer" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address $UBSAN_FLAGS -fno-omit-frame-pointer" \
    > build-asan/configure.log
  cmake --build build-asan -j "$JOBS" --target "${tests[@]}"
  echo "asan: built in $(( $(seconds) - start )) s"
  start=$(seconds)
  run_tests asan build-asan build-asan/sanitizer-logs "${tests[@]}"
  echo "asan: ran in $(( $(seconds) - start )) s"
}

run_tsan() {
  local start; start=$(seconds)
  local tests=(engine_test server_test)
  mkdir -p build-tsan
  cmake -S . -B build-tsan "${COMMON[@]}" -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
    "-DCMAKE_C_FLAGS=-fsanitize=thread" "-DCMAKE_CXX_FLAGS=-fsanitize=thread" \
    > build-tsan/configure.log
  cmake --build build-tsan -j "$JOBS" --target "${tests[@]}" mswa_absl_sync_tsan
  echo "tsan: built in $(( $(seconds) - start )) s"
  start=$(seconds)
  # Debian's Abseil is not instrumented: the preloaded annotations make absl::Mutex, CondVar and
  # Notification visible to TSan (every process the tests start inherits them).
  LD_PRELOAD=$ROOT/build-tsan/tests/sanitizers/libmswa_absl_sync_tsan.so \
    run_tests tsan build-tsan build-tsan/sanitizer-logs "${tests[@]}"
  echo "tsan: ran in $(( $(seconds) - start )) s"
}

RUNS=("$@")
if [ ${#RUNS[@]} -eq 0 ]; then RUNS=(fuzz asan tsan); fi
for run in "${RUNS[@]}"; do
  case $run in
    fuzz) run_fuzz ;;
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "unknown run '$run' (fuzz, asan, tsan)" >&2; exit 2 ;;
  esac
done
