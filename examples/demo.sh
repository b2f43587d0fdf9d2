#!/usr/bin/env bash
# demo.sh (make demo): compile examples/seed.nn with gradc, train it on 80%
# of the Breast Cancer Wisconsin data, and score it on the other 20%.
set -euo pipefail
cd "$(dirname "$0")"
GRADC=../build/gradc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== gradc seed.nn   (model -> gradient -> C -> executable)"
$GRADC seed.nn -o "$out/seed"
echo "== the gradient gradc derived (gradc --emit=grad seed.nn)"
$GRADC --emit=grad seed.nn
echo
echo "== ./seed train data/breast_cancer_train.csv --standardize --save seed.params"
"$out/seed" train data/breast_cancer_train.csv --standardize --save "$out/seed.params" 2>&1 |
  awk 'NR % 20 == 0 || /saved|train loss/'
echo
echo "== ./seed eval seed.params data/breast_cancer_test.csv   (114 held-out patients)"
"$out/seed" eval "$out/seed.params" data/breast_cancer_test.csv | tee "$out/eval.txt"
acc=$(awk '/^accuracy/ {print $2}' "$out/eval.txt")
echo
echo "test accuracy $acc (the target is at least 0.95)"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }'
