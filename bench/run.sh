#!/usr/bin/env bash
# bench/run.sh (`make bench`): gradc's training step against PyTorch eager
# and against the machine's single-thread sgemm ceiling, on the five models
# of bench/models/; writes bench/RESULTS.md. See bench/README.md.
#
# Environment knobs (all optional):
#   BENCH_MODELS="m1 m3"   models to run (default: m1 m2 m3 m4 m5)
#   BENCH_RUNS=3           fresh processes per measurement
#   BENCH_OUT=bench/RESULTS.md   where the report goes
#   BENCH_QUICK=1          far fewer samples (a smoke test of the harness;
#                          the report says so)
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
G=$ROOT/build/gradc
W=$ROOT/build/bench
PY=/usr/bin/python3
MODELS=${BENCH_MODELS:-m1 m2 m3 m4 m5}
RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-$ROOT/bench/RESULTS.md}
QUICK=${BENCH_QUICK:-0}
CC=${CC:-gcc}
CFLAGS_STEP="-O3 -march=native"
mkdir -p "$W"

# The environment of every timed process, ours and the peers':
# OPENBLAS_CORETYPE=Haswell (set by some shells) halves OpenBLAS's speed on
# this CPU; page faults are slow in these VMs, so malloc keeps its memory;
# one thread for real.
TUNABLES='glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4000000000'
RUNENV=(env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)

say() { printf '%s\n' "$*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field KEY of a "k=v k=v" line
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }

T_START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the compiler
if ! make -s build/gradc >"$W/make.log" 2>&1; then
  if [ -x "$G" ]; then
    say "warning: make build/gradc failed (see $W/make.log); using the existing build/gradc"
  else
    say "error: build/gradc does not build (see $W/make.log)"; exit 1
  fi
fi

# ---- the peers: PyTorch and OpenBLAS
have_torch=1
# Debian's PyTorch does its products through libblas.so.3: the reference
# BLAS (about 3 GFLOP/s here) unless OpenBLAS provides it, which makes the
# peer fair
if ! ls /usr/lib/x86_64-linux-gnu/libopenblas.so* >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libopenblas-dev (apt-get): PyTorch's BLAS"
    apt-get install -y -qq libopenblas-dev >"$W/apt.log" 2>&1 || true
  else
    say "warning: no OpenBLAS (apt-get install libopenblas-dev): PyTorch runs on the reference BLAS, an unfair peer"
  fi
fi
if ! $PY -c 'import torch' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing python3-torch libopenblas-dev (apt-get)"
    apt-get install -y -qq python3-torch libopenblas-dev >"$W/apt.log" 2>&1 || true
  fi
  $PY -c 'import torch' 2>/dev/null || { have_torch=0; say "warning: no PyTorch for $PY (apt-get install python3-torch): PyTorch columns are n/a"; }
fi
TORCH_VERSION=n/a
[ $have_torch = 1 ] && TORCH_VERSION=$($PY -c 'import torch; print(torch.__version__)' 2>/dev/null)

# ---- the ceiling: single-thread sgemm, n = 1024
CEIL=nan; CEIL_RUNS=
if $CC -O2 bench/sgemm.c -lopenblas -o "$W/sgemm" 2>"$W/sgemm.err"; then
  ns=30; [ "$QUICK" = 1 ] && ns=5
  for r in $(seq "$RUNS"); do
    l=$("${RUNENV[@]}" "$W/sgemm" 1024 $ns) && CEIL_RUNS="$CEIL_RUNS $(echo "$l" | field gflops)"
  done
  CEIL=$(printf '%s\n' $CEIL_RUNS | median)
  say "ceiling: single-thread cblas_sgemm n=1024: $CEIL GFLOP/s (runs:$CEIL_RUNS)"
else
  say "warning: bench/sgemm.c does not build against OpenBLAS (apt-get install libopenblas-dev): $(head -2 "$W/sgemm.err")"
fi

# ---- per model: samples wanted (min, max), time budget and warm-up (s)
settings() {
  if [ "$QUICK" = 1 ]; then echo "3 50 0.2 0.05"; return; fi
  case $1 in
    m1|m2) echo "300 20000 1.5 0.3" ;;
    m3)    echo "50 5000 2 0.5" ;;
    m4)    echo "3 200 4 1" ;;
    m5)    echo "5 500 3 0.5" ;;
    *)     echo "10 1000 2 0.5" ;;
  esac
}
target() { case $1 in m1) echo 100;; m2) echo 200;; m3) echo 1.4;; m4) echo 1.05;; m5) echo 1.3;; *) echo nan;; esac; }
nclass() { # 0 real targets, N class indices 0..N-1 (2 for bce's 0/1)
  local c; c=$(sed -n 's/^ *target .*class(\([0-9]*\)).*/\1/p' "$1" | head -1)
  if [ -n "$c" ]; then echo "$c"; elif grep -q 'bce' "$1"; then echo 2; else echo 0; fi
}

ROWS=; DETAIL=; FLOPROWS=; NOTES=
skip() { say "$M: skipped ($1)"; NOTES="$NOTES
- $M: skipped ($1)"; ROWS="$ROWS
| $M | skipped | | | | | | | | |"; }
for m in $MODELS; do
  M=$(echo "$m" | tr a-z A-Z)
  nn=bench/models/$m.nn
  d=$W/$m; mkdir -p "$d"
  if ! $G --check "$nn" >"$d/check.log" 2>&1; then skip "$(grep -m1 error "$d/check.log" || head -1 "$d/check.log")"; continue; fi
  if ! $G -c "$nn" -o "$d" >"$d/gradc.log" 2>&1; then skip "gradc -c: $(grep -m1 error "$d/gradc.log" || head -1 "$d/gradc.log")"; continue; fi
  if ! $CC $CFLAGS_STEP -D_POSIX_C_SOURCE=200112L -DMODEL=$m -DUMODEL=$M -DNCLASS="$(nclass "$nn")" -I"$d" -include "$d/$m.h" \
       bench/step.c "$d/$m.c" -lm -o "$d/step" 2>"$d/cc.log"; then
    skip "the generated C does not compile: $(grep -m1 error "$d/cc.log")"; continue
  fi
  read -r smin smax budget warm <<<"$(settings "$m")"
  batch=$(sed -n "s/^#define ${M}_MAX_BATCH \([0-9]*\).*/\1/p" "$d/$m.h")

  # FLOPs per step: gradc's stats, checked against the analytic count
  st=$($G --emit=stats "$nn" 2>/dev/null | sed -n 's/^flops per step of [0-9]* examples: forward \([0-9]*\), backward \([0-9]*\), sgd update \([0-9]*\).*/\1 \2 \3/p')
  read -r gf gb gu <<<"${st:-0 0 0}"
  gtot=$((gf + gb + gu))
  an=$($PY bench/torch_step.py --flops "$m")
  atot=$(echo "$an" | field total)
  if [ "$gtot" -gt 0 ] && awk -v g="$gtot" -v a="$atot" 'BEGIN { d = g - a; if (d < 0) d = -d; exit !(d <= 0.1 * a) }'; then
    FLOPS=$gtot; used="gradc --emit=stats"
  else
    FLOPS=$atot; used="analytic (gradc's count is off by $(calc %.0f "100 * ($gtot - $atot) / $atot")%)"
    NOTES="$NOTES
- $M: \`gradc --emit=stats\` gives $gtot FLOPs per step, the analytic count $atot; the table uses the analytic count."
    say "$M: gradc --emit=stats counts $gtot FLOPs per step, analytically $atot: using the analytic count"
  fi
  FLOPROWS="$FLOPROWS
| $M | $batch | $gf + $gb + $gu = $gtot | $(echo "$an" | field forward) + $(echo "$an" | field backward) + $(echo "$an" | field update) = $atot | $used |"

  # gradc and PyTorch: RUNS fresh processes each, taking turns (so that
  # both see the machine in the same state), the median of their medians
  gl=; gsamp=; tl=; tsamp=; T_MS=nan
  for r in $(seq "$RUNS"); do
    if l=$("${RUNENV[@]}" "$d/step" "$smin" "$smax" "$budget" "$warm" 2>>"$d/step.err"); then
      echo "$l" >>"$d/step.log"
      gl="$gl $(echo "$l" | field median_ms)"; gsamp="$gsamp $(echo "$l" | field samples)x$(echo "$l" | field reps)"
    fi
    [ $have_torch = 1 ] || continue
    if l=$("${RUNENV[@]}" $PY bench/torch_step.py "$m" "$smin" "$smax" "$budget" "$warm" 2>>"$d/torch.err"); then
      echo "$l" >>"$d/torch.log"
      tl="$tl $(echo "$l" | field median_ms)"; tsamp="$tsamp $(echo "$l" | field samples)x$(echo "$l" | field reps)"
    fi
  done
  [ -n "$gl" ] || { skip "the step failed: $(head -2 "$d/step.err")"; continue; }
  G_MS=$(printf '%s\n' $gl | median)
  say "$M gradc: $G_MS ms/step (per process:$gl)"
  [ "$m" = m4 ] && M4_1T=$G_MS
  if [ $have_torch = 1 ]; then
    [ -n "$tl" ] && T_MS=$(printf '%s\n' $tl | median)
    say "$M PyTorch: $T_MS ms/step (per process:$tl)"
  fi
  tg=$(target "$m")
  row=$(awk -v M="$M" -v g="$G_MS" -v t="$T_MS" -v f="$FLOPS" -v b="$batch" -v c="$CEIL" -v tg="$tg" 'BEGIN {
    gg = f / (g * 1e6); line = sprintf("| %s | %.4g | %.0f | %.3g |", M, g, b / (g / 1e3), gg)
    line = line (c == "nan" ? " n/a |" : sprintf(" %.3f |", gg / c))
    if (t == "nan") line = line " n/a | n/a | n/a |"
    else line = line sprintf(" %.4g | %.3g | %.3gx |", t, f / (t * 1e6), t / g)
    line = line sprintf(" %sx |", tg)
    if (t != "nan") line = line (t / g >= tg ? " yes |" : " no |"); else line = line " |"
    print line }')
  ROWS="$ROWS
$row"
  DETAIL="$DETAIL
| $M | $batch |$gl |$gsamp |${tl:- n/a} |${tsamp:- n/a} |"
done

# ---- two threads: M4 built with OpenMP (what gradc --threads 2 does), against its own one-thread figure
THREADS_ROW=
if [ -n "${M4_1T:-}" ] && [ "$(nproc)" -ge 2 ]; then
  d=$W/m4
  if $CC $CFLAGS_STEP -fopenmp -D_POSIX_C_SOURCE=200112L -DMODEL=m4 -DUMODEL=M4 -DNCLASS=10 -I"$d" -include "$d/m4.h" \
       bench/step.c "$d/m4.c" -lm -o "$d/step_omp" 2>"$d/cc_omp.log"; then
    read -r smin smax budget warm <<<"$(settings m4)"
    # one thread and two taking turns, so that both see the machine alike
    tl1=; tl2=
    for r in $(seq "$RUNS"); do
      l=$("${RUNENV[@]}" "$d/step" "$smin" "$smax" "$budget" "$warm" 2>>"$d/step.err") && tl1="$tl1 $(echo "$l" | field median_ms)"
      l=$(env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OMP_NUM_THREADS=2 OMP_PROC_BIND=close "$d/step_omp" "$smin" "$smax" "$budget" "$warm" 2>>"$d/step.err") || continue
      tl2="$tl2 $(echo "$l" | field median_ms)"
    done
    if [ -n "$tl2" ]; then
      [ -n "$tl1" ] && M4_1T=$(printf '%s\n' $tl1 | median)
      M4_2T=$(printf '%s\n' $tl2 | median)
      say "M4 gradc, 1 thread: $M4_1T ms/step (per process:$tl1), 2 threads: $M4_2T ms/step (per process:$tl2)"
      THREADS_ROW="| M4 | $M4_1T | $M4_2T |$tl1 |$tl2 | $(calc %.2fx "$M4_1T / $M4_2T") | 1.8x | $(awk -v a="$M4_1T" -v b="$M4_2T" 'BEGIN { print (a / b >= 1.8 ? "yes" : "no") }') |"
    fi
  else
    say "warning: M4 does not build with -fopenmp: $(head -2 "$d/cc_omp.log")"
  fi
fi

# ---- compile time
ct=$W/compile; mkdir -p "$ct"
{ echo "# a generated 100-layer MLP: 64 -> 99 x (64 relu) -> 10"
  echo "model mlp100"; echo "input x[64]"; echo "target label: class(10)"
  p=x; for i in $(seq 1 99); do echo "h$i = dense($p, 64, relu)"; p=h$i; done
  echo "z = dense($p, 10)"; echo "minimize cross_entropy(z, label)"
  echo "train {"; echo "  optimizer sgd(lr = 0.01)"; echo "  batch 64"; echo "}"; } >"$ct/mlp100.nn"
tl100=
for r in 1 2 3 4 5 6 7; do
  t0=$(now); $G -c "$ct/mlp100.nn" -o "$ct" >"$ct/gradc.log" 2>&1 || { tl100=; break; }; t1=$(now)
  tl100="$tl100 $(calc %.4f "$t1 - $t0")"
done
if [ -n "$tl100" ]; then T100=$(printf '%s\n' $tl100 | median); else T100=nan; say "warning: gradc -c mlp100.nn failed: $(head -2 "$ct/gradc.log")"; fi
say "compile: gradc -c on a 100-layer MLP: $T100 s (runs:$tl100)"
TCC=nan; tlcc=
if $G -c bench/models/m4.nn -o "$ct" >"$ct/m4.log" 2>&1; then
  for r in 1 2 3; do
    t0=$(now); $CC -O2 -c "$ct/m4.c" -o "$ct/m4.o" 2>"$ct/cc.log" || { tlcc=; break; }; t1=$(now)
    tlcc="$tlcc $(calc %.3f "$t1 - $t0")"
  done
  [ -n "$tlcc" ] && TCC=$(printf '%s\n' $tlcc | median)
fi
say "compile: $CC -O2 -c m4.c: $TCC s (runs:$tlcc)"
verdict() { awk -v t="$1" -v lim="$2" 'BEGIN { if (t == "nan") print "n/a"; else print (t + 0 < lim + 0 ? "yes" : "no") }'; }

T_END=$(now)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
NCPU=$(nproc)
BLASLIB=$(readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0 2>/dev/null || echo '?')

# ---- the report (the tree's state first: writing the report changes it)
GITREV="$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- . ":(exclude)bench/RESULTS.md" 2>/dev/null || echo ' plus uncommitted changes')"
{
  echo "# gradc benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- CPU: $CPU ($NCPU logical CPUs; flags include $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '| sed 's/ $//'))"
  echo "- command: \`make bench\` (bench/run.sh)$([ "$QUICK" = 1 ] && echo ' with BENCH_QUICK=1: a smoke test, few samples')"
  echo "- gradc: $($G --version 2>/dev/null | head -1), git $GITREV"
  echo "- our step: the generated C and bench/step.c, \`$CC $CFLAGS_STEP\` ($($CC --version | head -1))"
  echo "- PyTorch $TORCH_VERSION (Debian python3-torch, $PY), eager, \`torch.set_num_threads(1)\`"
  echo "- ceiling: single-thread \`cblas_sgemm\`, n = 1024, OpenBLAS ($BLASLIB): **$CEIL GFLOP/s** (median of $RUNS processes:$CEIL_RUNS)"
  echo "- every timed process ran under \`env -u OPENBLAS_CORETYPE GLIBC_TUNABLES=$TUNABLES OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1\`"
  echo "- load average (1, 5, 15 min) at the start: $LOAD_START, at the end: $LOAD_END; wall time $(calc %.0f "$T_END - $T_START") s"
  echo
  echo "One training step, float32: forward, loss, backward (no input gradient for the first layer), SGD update \`p -= lr*g\`, on one mini-batch already in memory. Each process warms up, then times individual steps (for tiny models a sample is several steps timed together, >= 50 us, divided by their number) and reports the median; the table gives the median of $RUNS fresh processes, gradc's and PyTorch's taking turns. GFLOP/s = FLOPs per step (below) / time; fraction = our GFLOP/s / the sgemm ceiling; speed-up = PyTorch ms / gradc ms."
  echo
  echo "| model | gradc ms/step | gradc samples/s | gradc GFLOP/s | fraction of ceiling | PyTorch ms/step | PyTorch GFLOP/s | speed-up | target | met |"
  echo "|---|---|---|---|---|---|---|---|---|---|${ROWS}"
  echo
  echo "Models (bench/models/): M1 3 -> 16 relu -> 16 relu -> 1 sigmoid, bce, batch 32; M2 linear regression on 10 features, mse, batch 64; M3 784 -> 256 relu -> 128 relu -> 10, cross_entropy, batch 64; M4 1024 -> 4096 relu -> 4096 relu -> 10, cross_entropy, batch 256; M5 1x28x28 -> conv 5x5 32 same relu -> maxpool 2 -> conv 5x5 64 same relu -> maxpool 2 -> 1024 relu -> 10, cross_entropy, batch 64."
  echo
  if [ -n "$THREADS_ROW" ]; then
    echo "## Two threads"
    echo
    echo "M4's step built with \`-fopenmp\` (what \`gradc --threads 2\` adds; the matrix products share their column panels among the threads), run with \`OMP_NUM_THREADS=2\`, against the same step on one thread (the build of the table above), the two taking turns, $RUNS processes each, medians."
    echo
    echo "| model | 1 thread ms/step | 2 threads ms/step | per process, 1 thread | per process, 2 threads | speed-up | target | met |"
    echo "|---|---|---|---|---|---|---|---|"
    echo "$THREADS_ROW"
    echo
  fi
  echo "## M6: the GPT of make gpt"
  echo
  echo "Measured by bench/m6.sh (\`make bench\` runs it after this report), written to [M6.md](M6.md): one training step of examples/gpt.nn against a PyTorch model of the same recipe, one thread each, and gradc's step on two threads (the batch split between them). Where one thread's step goes (perf, bench/README.md): the matrix product's kernel about 50% and its packing 8%, the model's own loops 24% (layer norm, GELU, the attention's softmax, views, gather and their adjoints), the attention's small batched products 5%, AdamW 5%."
  echo
  echo "## Compile time"
  echo
  echo "| what | median | runs | limit | met |"
  echo "|---|---|---|---|---|"
  echo "| \`gradc -c\` on a generated 100-layer MLP (64 wide) | $T100 s |$tl100 | 0.2 s | $(verdict "$T100" 0.2) |"
  echo "| \`$CC -O2 -c\` of M4's emitted C | $TCC s |$tlcc | 10 s | $(verdict "$TCC" 10) |"
  echo
  echo "## FLOPs per step (forward + backward + update)"
  echo
  echo "The analytic count (bench/torch_step.py --flops) follows gradc's conventions: 2·m·n·k per matrix product or convolution, one per element of bias adds, activations, masks, pooling inputs and reductions, two per parameter for the update; no input gradient for the first layer. gradc's own count (\`--emit=stats\`) is used when the two agree within 10%; its backward also counts the 1/n scaling of each parameter's gradient."
  echo
  echo "| model | batch | gradc --emit=stats | analytic | used |"
  echo "|---|---|---|---|---|${FLOPROWS}"
  [ -n "$NOTES" ] && { echo; echo "Notes:$NOTES"; }
  echo
  echo "## Per process"
  echo
  echo "Medians (ms/step) of each fresh process, and samples x steps per sample."
  echo
  echo "| model | batch | gradc | gradc samples | PyTorch | PyTorch samples |"
  echo "|---|---|---|---|---|---|${DETAIL}"
} >"$OUT"
echo
cat "$OUT"
echo
say "written: ${OUT#$ROOT/}"
