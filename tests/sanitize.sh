#!/usr/bin/env bash
# sanitize.sh (`make test-sanitize`): the test suite under AddressSanitizer
# and UndefinedBehaviorSanitizer.
#
#   1. builds gradc, the runtime libraries and the unit tests with
#      -fsanitize=address,undefined -fno-sanitize-recover=undefined into
#      build-san/ (B=build-san; the normal build/ is not touched), and runs
#      the unit tests;
#   2. runs tests/run_e2e.sh with GRADC=build-san/gradc and CC set to the
#      C compiler with the same sanitizers, so that the code gradc generates
#      is compiled with them too and linked with the sanitized runtime
#      (build-san/libgradcrt*.a, found beside build-san/gradc): every
#      executable the e2e tests train, evaluate and feed bad data runs under
#      ASan and UBSan. A sanitizer report makes the process fail (UBSan does
#      not recover; ASan aborts), and the test that ran it fails.
#
#   SAN_CC   the compiler (default gcc)
#   E2E_SKIP e2e scripts left out (default: install, which runs `make
#            install` of the normal build and tests nothing the sanitizers see)
set -u
cd "$(dirname "$0")/.."
root=$PWD
B=build-san
SAN_CC=${SAN_CC:-gcc}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$B"
# gradc keeps its arena and its last graph until it exits (an arena-style
# compiler frees at exit or not at all, and some exits skip it): those
# allocations (the nodes and their hash table, grown as the graph grows)
# are not leaks; any other is.
printf 'leak:graph_init\nleak:arena_new\nleak:node_make2\nleak:rehash\n' > "$B/lsan.supp"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/$B/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)

echo "== build ($B, $SAN_CC $SAN)"
mk() { nice make -s -j2 B=$B CC="$SAN_CC" CFLAGS="-O1 -g $SAN" \
         CPPFLAGS="-D_POSIX_C_SOURCE=200809L -Icompiler -I$B -Iruntime" "$@"; }
mk all || { echo "FAIL sanitizer build"; exit 1; }
units=$(ls tests/test_*.c | sed "s|tests/\(.*\)\.c|$B/\1|")
mk $units || { echo "FAIL sanitizer build of the unit tests"; exit 1; }

echo "== unit tests (sanitized)"
fail=0
for t in $units; do
  if "./$t" > "$B/unit.out" 2>&1; then echo "ok   $t"
  else echo "FAIL $t"; grep -E 'ERROR|FAILED|runtime error|Sanitizer' "$B/unit.out" | head -10; fail=1; fi
done

echo "== end-to-end tests (sanitized gradc, runtime and generated code)"
GRADC=$root/$B/gradc CC="$SAN_CC $SAN" E2E_SKIP=${E2E_SKIP:-install} bash tests/run_e2e.sh || fail=1

echo "sanitize: $(( $(date +%s) - start )) s"
[ "$fail" = 0 ] && echo "sanitizers: clean" || echo "sanitizers: FAILED"
exit $fail
