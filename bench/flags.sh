#!/usr/bin/env bash
# bench/flags.sh (part of `make bench`): the speed of the generated C must
# not depend on the flags of the build it lands in. For M3, M4 and M5 the
# same generated pair is built with gcc in GNU mode (gradc's own default,
# -O2 -march=native), gcc -std=c99 (ISO mode: no floating-point
# contraction), clang, clang -std=c99 and gcc -O3; and, when BENCH_BASE names a
# revision, the pair that revision's gradc generates, gcc GNU mode (the
# same step before a change). Each round runs every build once, taking
# turns; the table gives the median over the rounds of each build's median
# step and its ratio to gcc GNU mode. Writes bench/FLAGS.md.
#
#   BENCH_MODELS="m3 m4 m5"  BENCH_RUNS=3  BENCH_BASE=5abc745  BENCH_QUICK=1
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
G=$ROOT/build/gradc
W=$ROOT/build/bench-flags
MODELS=${BENCH_MODELS:-m3 m4 m5}
RUNS=${BENCH_RUNS:-3}
BASE=${BENCH_BASE:-}
QUICK=${BENCH_QUICK:-0}
OUT=${BENCH_FLAGS_OUT:-$ROOT/bench/FLAGS.md}
OPT="-O2 -march=native"
TUNABLES='glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4000000000'
RUNENV=(env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OMP_NUM_THREADS=1)
say() { printf '%s\n' "$*" >&2; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
nclass() {
  local c; c=$(sed -n 's/^ *target .*class(\([0-9]*\)).*/\1/p' "$1" | head -1)
  if [ -n "$c" ]; then echo "$c"; elif grep -q 'bce' "$1"; then echo 2; else echo 0; fi
}
settings() {
  if [ "$QUICK" = 1 ]; then echo "3 30 0.3 0.05"; return; fi
  case $1 in m4) echo "3 60 3 1" ;; m5) echo "5 200 2 0.5" ;; *) echo "30 3000 1.5 0.5" ;; esac
}
mkdir -p "$W"
make -s build/gradc >/dev/null 2>&1 || { say "error: build/gradc does not build"; exit 1; }
gbase=
if [ -n "$BASE" ]; then
  bt=$W/base-src; rm -rf "$bt"
  if git worktree add -q --detach "$bt" "$BASE" 2>"$W/base.log" && make -s -C "$bt" build/gradc >>"$W/base.log" 2>&1; then
    gbase=$bt/build/gradc
  else say "warning: revision $BASE does not build (see $W/base.log): no base column"; fi
fi
have() { command -v "$1" >/dev/null 2>&1; }
rows=
for m in $MODELS; do
  M=$(echo "$m" | tr a-z A-Z); nn=bench/models/$m.nn; d=$W/$m; rm -rf "$d"; mkdir -p "$d/new" "$d/base"
  "$G" -c "$nn" -o "$d/new" || { say "$M: gradc -c failed"; continue; }
  [ -n "$gbase" ] && { "$gbase" -c "$nn" -o "$d/base" || gbase=; }
  exes=; k=0
  while IFS= read -r b; do
    cc=${b%%:*}; fl=${b#*:}; k=$((k + 1)); have "$cc" || continue
    $cc $fl -D_POSIX_C_SOURCE=200112L -DMODEL=$m -DUMODEL=$M -DNCLASS="$(nclass "$nn")" -I"$d/new" -include "$d/new/$m.h" \
      bench/step.c "$d/new/$m.c" -lm -o "$d/step$k" 2>"$d/cc$k.log" && exes="$exes $k"
    echo "$cc $fl" >"$d/name$k"
  done <<<"$(printf 'gcc:%s\ngcc:-std=c99 %s\nclang:%s\nclang:-std=c99 %s\ngcc:-O3 -march=native\n' "$OPT" "$OPT" "$OPT" "$OPT")"
  if [ -n "$gbase" ]; then
    gcc $OPT -D_POSIX_C_SOURCE=200112L -DMODEL=$m -DUMODEL=$M -DNCLASS="$(nclass "$nn")" -I"$d/base" -include "$d/base/$m.h" \
      bench/step.c "$d/base/$m.c" -lm -o "$d/step6" 2>"$d/cc6.log" && exes="$exes 6" && echo "gcc $OPT, gradc $BASE" >"$d/name6"
  fi
  read -r smin smax budget warm <<<"$(settings "$m")"
  for r in $(seq "$RUNS"); do
    for k in $exes; do
      l=$("${RUNENV[@]}" "$d/step$k" "$smin" "$smax" "$budget" "$warm" 2>>"$d/step.err") && echo "$l" | field median_ms >>"$d/ms$k"
    done
  done
  ref=$(median <"$d/ms1")
  for k in $exes; do
    med=$(median <"$d/ms$k")
    ratio=$(awk -v a="$med" -v b="$ref" 'BEGIN { printf "%.3f", a / b }')
    runs=$(tr '\n' ' ' <"$d/ms$k")
    say "$M $(cat "$d/name$k"): $med ms/step ($ratio of gcc GNU mode; runs: $runs)"
    rows="$rows
| $M | \`$(cat "$d/name$k")\` | $med | $ratio | $runs|"
  done
done
[ -n "$gbase" ] && git worktree remove --force "$W/base-src" 2>/dev/null
{
  echo "# The generated C under other people's flags"
  echo
  echo "Written by \`bash bench/flags.sh\` (part of \`make bench\`) on $(date -u +%Y-%m-%d), $(nproc) cores, $(gcc --version | head -1), $(clang --version 2>/dev/null | head -1)."
  echo "The same generated pair of each model, built five ways; one training step (bench/step.c, one thread),"
  echo "median of $RUNS rounds in which the builds take turns. Targets: -std=c99 within 5% of GNU mode (ratio <= 1.05),"
  echo "clang within 10% of gcc (<= 1.10).${BASE:+ The last row of a model is the pair gradc $BASE generated, for the same step before the change.}"
  [ "$QUICK" = 1 ] && echo && echo "**BENCH_QUICK=1: far fewer samples, a smoke test of the harness, not a measurement.**"
  echo
  echo "| model | build | ms/step | / gcc GNU mode | runs (ms) |"
  echo "|---|---|---|---|---|$rows"
} >"$OUT"
say "wrote $OUT"
