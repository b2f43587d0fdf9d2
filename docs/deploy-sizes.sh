#!/usr/bin/env bash
# deploy-sizes.sh: the size table of docs/deploy.md. For each model and
# form of the generated pair: lines of MODEL.c, the text bytes of its object
# (gcc -O2 -march=x86-64 -c, then size), and MODEL_WORKSPACE_BYTES.
# Run from anywhere; uses gradc on PATH, else the tree's build/gradc.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
G=$(command -v gradc || echo "$src/build/gradc")
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
echo "| model | pair | lines | text bytes | workspace bytes |"
echo "|---|---|---|---|---|"
for m in seed iris fmnist_mlp; do
  for f in "" --predict-only; do
    rm -rf "$d/o"; mkdir "$d/o"
    "$G" -c $f "$src/examples/$m.nn" -o "$d/o"
    gcc -O2 -march=x86-64 -c "$d/o/$m.c" -I"$d/o" -o "$d/o/$m.o"
    echo "| $m | ${f:-full} | $(wc -l < "$d/o/$m.c") | $(size "$d/o/$m.o" | awk 'NR==2{print $1}') |" \
         "$(awk '/WORKSPACE_BYTES/ {print $3; exit}' "$d/o/$m.h") |"
  done
done
