#!/usr/bin/env bash
# gpt.sh (make gpt): compile examples/gpt.nn, train it with --text on tiny
# shakespeare (examples/data/tinyshakespeare.txt; the last 10% is the
# validation text) for the train block's 2000 steps, then print the
# validation loss (nats per character; the recipe's target is 1.88), the
# wall time of training and a 300-character sample. Exits 1 when the
# validation loss is above 1.88.
#
#   GPT_CFLAGS="-O3 -march=native"   how the generated C is compiled
#   GPT_THREADS=N                    OpenMP threads (default: the cores)
#   GPT_STEPS=N                      fewer steps (a smoke run; no target)
set -u
cd "$(dirname "$0")/.." || exit 2
G=$PWD/build/gradc
W=$PWD/build/gpt
CFLAGS=${GPT_CFLAGS:--O3 -march=native}
TEXT=examples/data/tinyshakespeare.txt
mkdir -p "$W"
now() { echo "${EPOCHREALTIME/,/.}"; }
echo "gpt: compiling examples/gpt.nn"
THREADS=${GPT_THREADS:-$(nproc)}
threads=(); [ "$THREADS" -gt 1 ] && threads=(--threads "$THREADS")
"$G" examples/gpt.nn -o "$W/gpt" --cflags "$CFLAGS" "${threads[@]}" || exit 1
"$W/gpt" info
steps=()
[ -n "${GPT_STEPS:-}" ] && steps=(--steps "$GPT_STEPS")
t0=$(now)
export OMP_NUM_THREADS=$THREADS
"$W/gpt" train --text "$TEXT" "${steps[@]}" --save "$W/gpt.params" 2>&1 | tee "$W/train.log"
st=${PIPESTATUS[0]}
t1=$(now)
[ "$st" = 0 ] || { echo "gpt: training failed (exit $st)"; exit 1; }
val=$(grep -o 'val_loss [0-9.]*' "$W/train.log" | tail -1 | awk '{print $2}')
echo
echo "gpt: validation loss ${val:-?} nats per character (target 1.88), trained in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s on $OMP_NUM_THREADS threads"
echo "gpt: a sample of 300 characters:"
"$W/gpt" sample "$W/gpt.params" --tokens 300 --seed 1
echo
[ -n "${GPT_STEPS:-}" ] && exit 0
awk -v v="${val:-99}" 'BEGIN { exit !(v <= 1.88) }' || { echo "gpt: validation loss above 1.88"; exit 1; }
