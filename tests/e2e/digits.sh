#!/usr/bin/env bash
# digits.sh: examples/digits.nn, a small convolutional network (two
# convolutions with max pooling, dropout, dense layers), trained on the 80%
# split of the 8x8 handwritten digits and scored on the other 359 images:
# test accuracy at least 0.95, and predict agrees with eval's count.
set -u
cd "$(dirname "$0")/../.."
G=$PWD/build/gradc
D=examples/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
if ! $G examples/digits.nn -o "$tmp/digits" 2>"$tmp/err"; then
  echo "FAIL build digits: $(head -3 "$tmp/err")"; exit 1
fi
start=${EPOCHREALTIME/,/.}
if ! "$tmp/digits" train $D/digits_train.csv --save "$tmp/p" -q >"$tmp/train.out" 2>"$tmp/err"; then
  echo "FAIL digits train: $(tail -3 "$tmp/err")"; exit 1
fi
secs=$(awk -v a="$start" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')
"$tmp/digits" eval "$tmp/p" $D/digits_test.csv > "$tmp/eval" 2>&1
acc=$(awk '/^accuracy/ {print $2}' "$tmp/eval")
right=$(sed -n 's/^accuracy [0-9.]* (\([0-9]*\)\/.*/\1/p' "$tmp/eval")
if awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.95) }'; then
  echo "ok   digits test accuracy $acc (>= 0.95), trained in ${secs}s"
else
  echo "FAIL digits test accuracy ${acc:-none} < 0.95: $(head -3 "$tmp/eval")"; fail=1
fi
# predict: the argmax of each line against the label column of the test file
"$tmp/digits" predict "$tmp/p" $D/digits_test.csv > "$tmp/pred" 2>"$tmp/err"
n=$(awk -F, 'NR == FNR { if (FNR > 1) label[FNR - 1] = $NF; next }
  { best = 1; for (i = 2; i <= NF; i++) if ($i > $best) best = i; if (best - 1 == label[FNR]) k++ }
  END { print k + 0 }' $D/digits_test.csv FS=' ' "$tmp/pred")
if [ "$(wc -l < "$tmp/pred")" = 359 ] && [ "$n" = "$right" ]; then
  echo "ok   digits predict: 359 lines, $n right as eval counts"
else
  echo "FAIL digits predict: $(wc -l < "$tmp/pred") lines, $n right, eval says ${right:-?}"; fail=1
fi
exit $fail
