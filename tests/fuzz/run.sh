#!/usr/bin/env bash
# run.sh (`make fuzz`): builds the libFuzzer target of gradc's front end and
# checker (fuzz_frontend.c with every compiler object but main.c, and the
# runtime objects gradc links: the Makefile's GRADC_RT; under AddressSanitizer
# and UndefinedBehaviorSanitizer) and runs it on one job.
#
#   FUZZ_SECONDS   how long to run (default 1800)
#   FUZZ_JOBS      parallel jobs (default 1)
#   FUZZ_UPDATE_CORPUS=1   afterwards, replace tests/fuzz/corpus with the
#                  minimized merge of what the run found (keep it < 1 MB)
#   FUZZ_BUILD     build directory (default build-fuzz)
#   FUZZ_WORK      the corpus the run adds to (default FUZZ_BUILD/corpus)
#   FUZZ_SKIP      names of seed files to leave out (tests/e2e/fuzz.sh: the
#                  inputs of crashes still being fixed)
#
# The run starts from tests/fuzz/corpus and every model under examples/ and
# tests/ (goldens, diagnostics, regressions), with -max_len=4096 and a dictionary of the
# language's words (gradc.dict). It prints the executions run and the
# coverage reached (libFuzzer's cov: edges and ft: features). A crash, hang
# (-timeout=10 s) or leak stops it: the input is saved under
# tests/fuzz/regressions/ and tests/e2e/fuzz_regress.sh replays it from then on.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
B=${FUZZ_BUILD:-build-fuzz}
SECONDS_TO_RUN=${FUZZ_SECONDS:-1800}
JOBS=${FUZZ_JOBS:-1}
CLANG=${CLANG:-clang}

# ------------------------------------------------------------- the tools
need=""
command -v "$CLANG" >/dev/null 2>&1 || need="$need clang"
command -v flex >/dev/null 2>&1 || need="$need flex"
command -v bison >/dev/null 2>&1 || need="$need bison"
if command -v "$CLANG" >/dev/null 2>&1; then
  echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > /tmp/fuzzprobe.$$.c
  "$CLANG" -fsanitize=fuzzer,address,undefined /tmp/fuzzprobe.$$.c -o /tmp/fuzzprobe.$$ 2>/dev/null || need="$need libclang-rt-14-dev"
  rm -f /tmp/fuzzprobe.$$ /tmp/fuzzprobe.$$.c
fi
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null || exit 1
    # Debian's clang 14 keeps libFuzzer in libclang-rt-14-dev (newer releases)
    # or in libclang-common-14-dev (bookworm): try the other one too
  else
    echo "missing:$need; run: sudo apt-get install -y$need" >&2
    exit 1
  fi
fi

# ------------------------------------------------------------- the build
mkdir -p "$B/obj"
[ "$B/lexer.c" -nt grammar/lexer.l ] || flex --header-file="$B/lexer.h" -o "$B/lexer.c" grammar/lexer.l || exit 1
[ "$B/parser.c" -nt grammar/parser.y ] || bison -Wall -d -o "$B/parser.c" grammar/parser.y || exit 1
FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CPP="-D_POSIX_C_SOURCE=200809L -Icompiler -I$B -Iruntime"
# the compiler's objects as the Makefile lists them (COMPILER), and the
# files the Makefile generates for them (the matrix kernel as a C string)
comp=$(sed -n 's/^COMPILER *= *//p' Makefile)
[ -n "$comp" ] || comp=$(cd compiler && ls *.c | sed 's/\.c$//' | grep -v '^main$')
# and the runtime files gradc links too (GRADC_RT: the parameter-file reader, ...)
rtsrc=$(sed -n 's/^GRADC_RT *= *//p' Makefile | grep -o 'rt/[a-z_]*\.o' | sed 's|^rt/\(.*\)\.o$|runtime/\1.c|')
incs=$(grep -ho '^#include "[a-z_]*\.inc"' compiler/*.c | sed 's/.*"\(.*\)"/\1/' | sort -u)
if [ -n "$incs" ]; then make -s B="$B" $(printf "$B/%s " $incs) || exit 1; fi
# objects are rebuilt when their source, a header or a generated file is newer
objs=""
for src in $(printf 'compiler/%s.c ' $comp) $rtsrc "$B/lexer.c" "$B/parser.c" tests/fuzz/fuzz_frontend.c; do
  o=$B/obj/$(basename "$src" .c).o
  fresh=1
  for dep in "$src" compiler/*.h compiler/*.def runtime/*.h runtime/*.def "$B/parser.h" $(printf "$B/%s " $incs); do
    [ "$o" -nt "$dep" ] || fresh=0
  done
  [ $fresh = 1 ] || "$CLANG" $CPP $FLAGS -std=c99 -w -c -o "$o" "$src" || exit 1
  objs="$objs $o"
done
"$CLANG" $FLAGS -o "$B/fuzz_frontend" $objs -lm || exit 1
echo "built $B/fuzz_frontend"

# ------------------------------------------------------------- the run
work=${FUZZ_WORK:-$B/corpus}
mkdir -p "$work" tests/fuzz/corpus tests/fuzz/regressions "$B/artifacts"
# the seeds: the shipped corpus and every model under examples/ and tests/
# (the goldens, the diagnostics, the regressions), less FUZZ_SKIP's names;
# copied by a few cp calls (one per file costs seconds here), same names
# numbered apart
seed_dir=$B/seeds
rm -rf "$seed_dir"; mkdir -p "$seed_dir"
skip=()
for n in ${FUZZ_SKIP:-}; do skip+=(! -name "$n"); done
find tests/fuzz/corpus -type f "${skip[@]}" -exec cp -t "$seed_dir" {} +
find examples tests -path tests/fuzz/corpus -prune -o -type f -name '*.nn' "${skip[@]}" -print0 |
  xargs -0 cp --backup=numbered -t "$seed_dir"
echo "seeds: $(ls "$seed_dir" | wc -l) files${FUZZ_SKIP:+ (left out: $FUZZ_SKIP)}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
args="-max_len=4096 -timeout=10 -rss_limit_mb=2048 -dict=tests/fuzz/gradc.dict -print_final_stats=1 \
      -max_total_time=$SECONDS_TO_RUN -artifact_prefix=$B/artifacts/"
if [ "$JOBS" -gt 1 ]; then args="$args -jobs=$JOBS -workers=$JOBS"; fi
echo "fuzzing for $SECONDS_TO_RUN s with $JOBS job(s)"
"$B/fuzz_frontend" $args "$work" "$seed_dir" 2>&1 | tee "$B/fuzz.log" | grep -E --line-buffered '#[0-9]+.*(pulse|DONE|INITED)|ERROR|SUMMARY|stat::|Test unit written|^==[0-9]+==|^ +#[0-9]+ 0x'
rc=${PIPESTATUS[0]}

# crashers become regression inputs
for f in "$B"/artifacts/crash-* "$B"/artifacts/timeout-* "$B"/artifacts/leak-* "$B"/artifacts/oom-*; do
  [ -f "$f" ] || continue
  case $f in *.seen) continue ;; esac
  n=$(basename "$f" | cut -c1-24).nn
  cp "$f" "tests/fuzz/regressions/$n" && echo "new regression input: tests/fuzz/regressions/$n"
  mv "$f" "$f.seen"
done

# ------------------------------------------------------------- the result
last=$(grep -E '^#[0-9]+' "$B/fuzz.log" | tail -1)
execs=$(grep -E 'stat::number_of_executed_units' "$B/fuzz.log" | awk '{s += $2} END {print s + 0}')
echo "executions: $execs"
echo "coverage:   $(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')"

if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
  new=$B/corpus.min; rm -rf "$new" "$new.full"; mkdir -p "$new" "$new.full"
  # two merges: the full one, then one at -max_len=1024, which keeps the
  # corpus under 1 MB for about 0.3% of the edges
  "$B/fuzz_frontend" -merge=1 -max_len=4096 "$new.full" "$work" "$seed_dir" >/dev/null 2>&1
  "$B/fuzz_frontend" -merge=1 -max_len=1024 "$new" "$new.full" >/dev/null 2>&1
  # the named inputs (deep-dense-30.nn, huge-batch.nn, ...) stay, merged or not
  mkdir -p "$new.named"; find tests/fuzz/corpus -name '*.nn' -exec cp -t "$new.named" {} +
  rm -rf tests/fuzz/corpus; mkdir -p tests/fuzz/corpus
  cp "$new"/* "$new.named"/* tests/fuzz/corpus/ 2>/dev/null
  echo "corpus: $(ls tests/fuzz/corpus | wc -l) files, $(cat tests/fuzz/corpus/* | wc -c) bytes"
fi
if [ "$rc" != 0 ]; then echo "the fuzzer stopped with status $rc (see $B/fuzz.log)"; exit 1; fi
exit 0
