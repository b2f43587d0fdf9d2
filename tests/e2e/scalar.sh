#!/usr/bin/env bash
# scalar.sh: gradc --scalar writes out tiny models one scalar at a time; the
# result must compile cleanly and compute the same loss, gradient and
# predictions as the vectorized build (to float rounding: 1e-5 relative).
set -u
cd "$(dirname "$0")/../.."
G=$PWD/build/gradc
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
# elem: silu, maximum, minimum and clamp through the same templates
printf 'input x[3]\ntarget y[2]\nparam W[2, 3] init normal(0, 0.5)\nparam V[2, 3] init normal(0, 0.5)\nz = W @ x\nu = V @ x\nminimize mse(silu(z) + maximum(z, u) + minimum(z, 0.1) + clamp(u, -0.2, 0.3), y)\n' > "$tmp/elem.nn"
for model in tiny linreg seed elem; do
  src=examples/$model.nn; [ $model = elem ] && src=$tmp/elem.nn
  for mode in vec scalar; do
    d=$tmp/$model-$mode; mkdir -p "$d"
    flag=; [ $mode = scalar ] && flag=--scalar
    U=$(echo $model | tr a-z A-Z)
    if ! $G -c $flag "$src" -o "$d" 2>"$d/err"; then echo "FAIL $model $mode: $(head -3 "$d/err")"; fail=1; continue; fi
    if ! cc -std=c99 -Wall -Wextra -pedantic -Werror -O1 -I"$d" -include "$d/$model.h" -DMODEL=$model \
         -DPARAM_COUNT=${U}_PARAM_COUNT -DINPUT_SIZE=${U}_INPUT_SIZE -DTARGET_SIZE=${U}_TARGET_SIZE \
         -DOUTPUT_SIZE=${U}_OUTPUT_SIZE -DMAX_BATCH=${U}_MAX_BATCH -DWORKSPACE_BYTES=${U}_WORKSPACE_BYTES \
         tests/e2e/grad_dump.c "$d/$model.c" -lm -o "$d/dump" 2>"$d/err"; then
      echo "FAIL $model $mode: cc: $(head -5 "$d/err")"; fail=1; continue
    fi
    "$d/dump" 7 > "$d/out"
  done
  if ! paste "$tmp/$model-vec/out" "$tmp/$model-scalar/out" | awk '{ d = $1 - $2; d = d < 0 ? -d : d; s = ($1 < 0 ? -$1 : $1) + ($2 < 0 ? -$2 : $2);
        if (d > 1e-5 * (s > 1e-3 ? s : 1e-3)) { print "line " NR ": " $1 " vs " $2; bad = 1 } } END { exit bad }'; then
    echo "FAIL $model: --scalar and vectorized differ"; fail=1
  else
    echo "ok   $model: --scalar equals vectorized ($(wc -l < "$tmp/$model-vec/out") values)"
  fi
done
# every param's gradient is its named sum over the batch, dL_d<param>, over n
# (also where the simplifier took a constant out of the sum: linreg's
# 2/n, tiny's b2)
for model in tiny linreg seed; do
  c=$tmp/$model-scalar/$model.c
  [ -f "$c" ] || continue
  grads=$(grep -c '^    const [a-z]* grad_' "$c"); named=$(grep -c '^    const [a-z]* grad_[A-Za-z0-9_]* = dL_d[A-Za-z0-9_]* / ([a-z]*)n;' "$c")
  # the one unnamed sum left is the loss's
  sums=$(sed -n '/loss_grad(/,/^}/p' "$c" | grep -o '^ *t[0-9_]* += ' | sort -u | wc -l)
  if [ "$grads" -gt 0 ] && [ "$grads" = "$named" ] && [ "$sums" = 1 ]; then
    echo "ok   $model --scalar: each of the $grads gradient values is dL_d<param> / n"
  else echo "FAIL $model --scalar: $named of $grads gradient values read a dL_d<param> sum ($sums unnamed sums)"; grep -n ' += \|grad_' "$c" | head -8; fail=1; fi
done
# too large: a clear refusal
printf 'input x[784]\ntarget y[10]\nh = dense(x, 256, relu)\nz = dense(h, 10)\nminimize mse(z, y)\n' > "$tmp/big.nn"
if $G --scalar -c "$tmp/big.nn" -o "$tmp" 2>"$tmp/err"; then echo "FAIL big model accepted by --scalar"; fail=1
elif ! grep -q "writes out at most" "$tmp/err"; then echo "FAIL big model message: $(cat "$tmp/err")"; fail=1; fi
# ops --scalar does not write out: a located error at the op, exit 1, and
# no output (they stopped gradc with an internal error once)
for op in "conv2d(x, out=2, k=3)" "maxpool2d(x, 2)" "avgpool2d(x, 2)" "dropout(x, 0.5)"; do
  name=${op%%(*}
  printf 'input x[1, 4, 4]\ntarget y[1]\nh = %s\nminimize mse(sum(h), y)\n' "$op" > "$tmp/$name.nn"
  mkdir -p "$tmp/out-$name"
  $G -c --scalar "$tmp/$name.nn" -o "$tmp/out-$name" 2>"$tmp/err"; rc=$?
  want="$tmp/$name.nn:3:5: error: --scalar does not support $name; compile without --scalar"
  if [ $rc = 1 ] && [ "$(head -1 "$tmp/err")" = "$want" ] && [ -z "$(ls -A "$tmp/out-$name")" ]; then
    echo "ok   --scalar refuses $name at its line"
  else
    echo "FAIL --scalar on $name: exit $rc, left '$(ls -A "$tmp/out-$name")'" "$(head -1 "$tmp/err")"; fail=1
  fi
done
exit $fail
