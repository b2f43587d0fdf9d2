#!/usr/bin/env bash
# bench/m6.sh (part of `make bench`): M6, one training step of the GPT of
# examples/gpt.nn (4 blocks, 4 heads, width 128, context 64, batch 12,
# AdamW), gradc's generated C against the same recipe in PyTorch eager
# (bench/torch_gpt.py), one thread each, taking turns; then gradc's step on
# two threads (gradc --threads: the batch split among them) against its one.
# Writes bench/M6.md.
#
#   BENCH_RUNS=3  BENCH_QUICK=1  BENCH_M6_OUT=bench/M6.md
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
G=$ROOT/build/gradc
W=$ROOT/build/bench-m6
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-3}
QUICK=${BENCH_QUICK:-0}
OUT=${BENCH_M6_OUT:-$ROOT/bench/M6.md}
TUNABLES='glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4000000000'
ENV1=(env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)
ENV2=(env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OMP_NUM_THREADS=2 OMP_PROC_BIND=close)
say() { printf '%s\n' "$*" >&2; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
samples="5 200 4 1"; [ "$QUICK" = 1 ] && samples="2 5 0.5 0.2"
mkdir -p "$W"
make -s build/gradc >/dev/null 2>&1 || { say "error: build/gradc does not build"; exit 1; }
if ! "$G" -c examples/gpt.nn -o "$W" 2>"$W/gradc.log"; then
  say "M6: gradc -c examples/gpt.nn failed: $(grep -m1 error "$W/gradc.log")"
  { echo "# M6: the GPT step"; echo; echo "Not measured: \`gradc -c examples/gpt.nn\` fails: $(grep -m1 error "$W/gradc.log")"; } >"$OUT"
  exit 1
fi
DEFS="-D_POSIX_C_SOURCE=200112L -DMODEL=gpt -DUMODEL=GPT -DNCLASS=65 -DVOCAB=65 -DADAMW -DLR=1e-3f"
# the generated C as users build it; the harness (its AdamW loop in vectors)
# with -fno-math-errno
gcc -O3 -march=native $DEFS -I"$W" -c "$W/gpt.c" -o "$W/gpt.o" || exit 1
gcc -O3 -march=native -fno-math-errno $DEFS -I"$W" -include "$W/gpt.h" bench/step.c "$W/gpt.o" -lm -o "$W/step" || exit 1
# two threads as gradc --threads builds them for this model (no state, each
# param used many times per example): the batch split among the threads, the
# model's own code compiled without OpenMP (bench/step.c -DSPLIT does what
# runtime/rt_train.c does)
gcc -O3 -march=native -fno-math-errno -fopenmp -DSPLIT $DEFS -I"$W" -include "$W/gpt.h" bench/step.c "$W/gpt.o" -lm -o "$W/step_omp" || exit 1
have_torch=1; $PY -c 'import torch' 2>/dev/null || { have_torch=0; say "warning: no PyTorch (apt-get install python3-torch libopenblas-dev)"; }
: >"$W/g1"; : >"$W/g2"; : >"$W/t1"
for r in $(seq "$RUNS"); do
  l=$("${ENV1[@]}" "$W/step" $samples) && echo "$l" | field median_ms >>"$W/g1" && echo "$l" >>"$W/step.log"
  [ $have_torch = 1 ] && l=$("${ENV1[@]}" $PY bench/torch_gpt.py step $samples) && echo "$l" | field median_ms >>"$W/t1" && echo "$l" >>"$W/torch.log"
  l=$("${ENV2[@]}" "$W/step_omp" $samples) && echo "$l" | field median_ms >>"$W/g2"
done
g1=$(median <"$W/g1"); g2=$(median <"$W/g2"); t1=$(median <"$W/t1")
fl=$($PY bench/torch_gpt.py --flops | field total)
sp=$(calc %.2f "$t1 / $g1"); sc=$(calc %.2f "$g1 / $g2")
say "M6: gradc $g1 ms/step, PyTorch $t1 ms/step: ${sp}x; gradc on 2 threads $g2 ms: ${sc}x"
{
  echo "# M6: the GPT step"
  echo
  echo "Written by \`bash bench/m6.sh\` (part of \`make bench\`) on $(date -u +%Y-%m-%d), $(nproc) cores, $(gcc --version | head -1)."
  echo "One training step (forward, loss, backward, AdamW) of examples/gpt.nn on one batch of 12 windows of 64 tokens in memory:"
  echo "gradc's generated C (bench/step.c, \`gcc -O3 -march=native\`, \`-DADAMW -DVOCAB=65\`) against bench/torch_gpt.py (PyTorch $($PY -c 'import torch; print(torch.__version__)' 2>/dev/null || echo n/a) eager, AdamW, one thread, OpenBLAS),"
  echo "medians of $RUNS fresh processes each, taking turns. $fl FLOPs per step (2mnk per product)."
  [ "$QUICK" = 1 ] && echo && echo "**BENCH_QUICK=1: a smoke test of the harness, not a measurement.**"
  echo
  echo "| | ms/step | GFLOP/s | runs (ms) |"
  echo "|---|---|---|---|"
  echo "| gradc, 1 thread | $g1 | $(calc %.1f "$fl / $g1 / 1e6") | $(tr '\n' ' ' <"$W/g1")|"
  echo "| PyTorch, 1 thread | $t1 | $(calc %.1f "$fl / $t1 / 1e6") | $(tr '\n' ' ' <"$W/t1")|"
  echo "| gradc, 2 threads | $g2 | $(calc %.1f "$fl / $g2 / 1e6") | $(tr '\n' ' ' <"$W/g2")|"
  echo
  echo "Speed-up over PyTorch on one thread: **${sp}x** (target 1.3x). Two threads over one: **${sc}x** (target 1.8x)."
} >"$OUT"
say "wrote $OUT"
