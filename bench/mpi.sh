#!/usr/bin/env bash
# bench/mpi.sh: scaling of data-parallel training (gradc --mpi, docs/mpi.md)
# from 1 to 2 ranks on this machine, for the benchmark models M3 and M4.
#
# Each model is built with `gradc --mpi --cflags "-O3 -march=native"` and
# trained on random data (CSV, written once) for a few epochs, under
# `mpirun -np P --bind-to none` with P = 1 and 2. A step's time is the
# median over the epochs of (epoch wall time from --log) / (steps per
# epoch): the whole global step, forward, backward, allreduce and update;
# reading the CSV is not counted. GRADC_MPI_TIMES=1 makes rank 0 print the
# time spent in the gradient allreduce. Each figure is the median of
# BENCH_RUNS (3) fresh jobs. Writes bench/MPI_RESULTS.md and prints it.
#
# Knobs: BENCH_RUNS=3, BENCH_MODELS="m3 m4", BENCH_QUICK=1 (fewer epochs),
# BENCH_OUT=bench/MPI_RESULTS.md.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
G=$ROOT/build/gradc
W=$ROOT/build/bench-mpi
RUNS=${BENCH_RUNS:-3}
MODELS=${BENCH_MODELS:-m3 m4}
QUICK=${BENCH_QUICK:-0}
OUT=${BENCH_OUT:-$ROOT/bench/MPI_RESULTS.md}
mkdir -p "$W"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
command -v mpirun >/dev/null || { echo "error: no mpirun (apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 1; }
make -s build/gradc build/libgradcrt_mpi.a >/dev/null || { echo "error: make failed" >&2; exit 1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# model: inputs batch rows epochs
spec() {
  case $1 in
    m3) echo "784 64 $((64 * 40)) $([ "$QUICK" = 1 ] && echo 2 || echo 4)" ;;
    m4) echo "1024 256 512 $([ "$QUICK" = 1 ] && echo 1 || echo 2)" ;;
  esac
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
rows_md=""
for m in $MODELS; do
  read -r nx batch n epochs <<< "$(spec $m)"
  steps=$(( (n + batch - 1) / batch ))
  echo "== $m: $n examples, batch $batch, $steps steps per epoch, $epochs epochs" >&2
  $G --mpi --cflags "-O3 -march=native" bench/models/$m.nn -o "$W/$m" || exit 1
  np=$("$W/$m" info | awk '/^params/ { print $2 }')
  data=$W/$m.csv
  if ! [ -s "$data" ] || [ "$(wc -l < "$data")" != "$n" ]; then
    awk -v n=$n -v nx=$nx 'BEGIN { srand(1); for (i = 0; i < n; i++) { for (j = 0; j < nx; j++) printf "%.3f,", rand(); print int(rand() * 10) } }' > "$data"
  fi
  declare -A ms=() red=()
  for P in 1 2; do
    per=() rs=()
    for r in $(seq $RUNS); do
      rm -f "$W/log.csv"
      GRADC_MPI_TIMES=1 timeout 3600 mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np $P "$W/$m" train "$data" \
        --epochs $epochs -q --log "$W/log.csv" > /dev/null 2> "$W/err" || { cat "$W/err" >&2; exit 1; }
      # per-epoch wall time / steps, median over the epochs
      per+=("$(awk -F, -v s=$steps 'NR > 1 { print ($7 - prev) / s * 1000; prev = $7 }' "$W/log.csv" | median)")
      rs+=("$(awk -v s=$((steps * epochs)) '/^mpi:/ { print $6 / s * 1000 }' "$W/err")")
      echo "   P=$P run $r: ${per[-1]} ms/step, allreduce ${rs[-1]} ms/step" >&2
    done
    ms[$P]=$(printf '%s\n' "${per[@]}" | median)
    red[$P]=$(printf '%s\n' "${rs[@]}" | median)
  done
  speed=$(awk -v a="${ms[1]}" -v b="${ms[2]}" 'BEGIN { printf "%.2f", a / b }')
  rows_md+="| ${m^^} | $np | $batch | $(awk -v b=$np 'BEGIN { printf "%.1f", 8 * (b + 1) / 1e6 }') | ${ms[1]} | ${ms[2]} | ${red[2]} | ${speed}x | $(awk -v s=$speed 'BEGIN { printf "%.0f%%", s / 2 * 100 }') |"$'\n'
  unset ms red
done

{
  echo "# Data-parallel scaling on this machine (bench/mpi.sh)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(getconf _NPROCESSORS_ONLN) logical CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), shared with other jobs"
  echo "- Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{ print $NF }'), \`mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np P\`, shared-memory transport (one machine)"
  echo "- load average at the start: $LOAD0, at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $((SECONDS - T0)) s; $RUNS jobs per figure (median)$([ "$QUICK" = 1 ] && echo '; BENCH_QUICK=1')"
  echo
  echo "ms/step: one global step (forward, backward, allreduce of the gradient in double, update), median over epochs of the epoch time from --log / steps. allreduce: rank 0's time in MPI_Allreduce per step, which includes waiting for the slower rank."
  echo
  echo "| model | params | global batch | allreduce MB | 1 rank ms/step | 2 ranks ms/step | 2 ranks: allreduce ms/step | speed-up | efficiency |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows_md"
} > "$OUT"
cat "$OUT"
