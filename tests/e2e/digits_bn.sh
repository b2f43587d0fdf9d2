#!/usr/bin/env bash
# digits_bn.sh: examples/digits_bn.nn (digits.nn with batch_norm) built as
# an executable, trained on the digits' 80% split and scored on the other
# 359 images with the running statistics saved in the parameter file: test
# accuracy at least 0.95; eval run twice gives the same figure (eval reads
# the state, never updates it). gradcheck of a batch_norm MLP without
# dropout, in double and float: the training loss (the batch's statistics,
# loss_grad's own) is the one differentiated, not eval's.
. "$(dirname "$0")/lib.bash"
D=examples/data
if ! "$G" examples/digits_bn.nn -o "$tmp/bn" 2>"$tmp/err"; then
  bad "digits_bn build" "$(head -3 "$tmp/err")"; finish digits_bn; exit
fi
if ! "$tmp/bn" train $D/digits_train.csv --save "$tmp/p" -q >"$tmp/out" 2>"$tmp/err"; then
  bad "digits_bn train" "$(tail -3 "$tmp/err")"; finish digits_bn; exit
fi
"$tmp/bn" eval "$tmp/p" $D/digits_test.csv >"$tmp/e1" 2>&1
"$tmp/bn" eval "$tmp/p" $D/digits_test.csv >"$tmp/e2" 2>&1
acc=$(awk '/^accuracy/ {print $2}' "$tmp/e1")
if awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.95) }'; then ok "digits_bn test accuracy $acc (>= 0.95) with the running statistics"
else bad "digits_bn test accuracy ${acc:-none} < 0.95" "$(head -3 "$tmp/e1")"; fi
cmp -s "$tmp/e1" "$tmp/e2" && ok "eval leaves the state as it was" || bad "eval twice differs" "$(diff "$tmp/e1" "$tmp/e2" | head -4)"
head -30 $D/digits_test.csv > "$tmp/small.csv"
for prec in double float; do
  printf 'model bnmlp\nprecision %s\ninput x[64]\ntarget digit: class(10)\nh = dense(x / 16, 32)\nz = dense(relu(batch_norm(h)), 10)\nminimize cross_entropy(z, digit)\ntrain {\n  batch 32\n}\n' "$prec" > "$tmp/bnmlp.nn"
  if "$G" "$tmp/bnmlp.nn" -o "$tmp/bnmlp" 2>"$tmp/err" && "$tmp/bnmlp" gradcheck "$tmp/small.csv" >"$tmp/gc" 2>&1; then
    ok "batch_norm gradcheck ($prec): $(tail -1 "$tmp/gc")"
  else bad "batch_norm gradcheck ($prec)" "$(tail -2 "$tmp/gc" "$tmp/err" 2>/dev/null)"; fi
done
finish digits_bn
