#!/usr/bin/env bash
# param_flags.sh: `nodecay` and `frozen` after a param. The compiler reads
# them into the param's flags; a frozen param gets no gradient (its part of
# loss_grad's gradient is 0 and nothing is computed for it), and every other
# value is what the same model without `frozen` computes. Blocks: the words
# of a param declared in a def hold for each call's copy.
. "$(dirname "$0")/lib.bash"
body='input x[3]
target y[2]
def blk(u) {
  param g[4] init ones nodecay
  param V[4, 4] init normal(0, 0.5) WORDS
  return tanh(V @ (u * g))
}
param W1[4, 3] init normal(0, 0.5) WORDS
param b1[4] nodecay
h1 = blk(tanh(W1 @ x + b1))
h2 = blk(h1)
param W2[2, 4] init normal(0, 0.5)
minimize mse(W2 @ h2, y)'
for v in plain frozen; do
  d=$tmp/$v; mkdir -p "$d"
  words=; [ $v = frozen ] && words=frozen
  printf 'model pf\nprecision double\n%s\n' "${body//WORDS/$words}" > "$d/pf.nn"
  if ! "$G" -c "$d/pf.nn" -o "$d" 2>"$d/err"; then bad "$v: gradc" "$(head -3 "$d/err")"; continue; fi
  if ! cc -std=c99 -Wall -Wextra -pedantic -Werror -O1 -I"$d" -include "$d/pf.h" -DMODEL=pf -DREAL=double \
       -DPARAM_COUNT=PF_PARAM_COUNT -DINPUT_SIZE=PF_INPUT_SIZE -DTARGET_SIZE=PF_TARGET_SIZE \
       -DOUTPUT_SIZE=PF_OUTPUT_SIZE -DMAX_BATCH=PF_MAX_BATCH -DWORKSPACE_BYTES=PF_WORKSPACE_BYTES \
       tests/e2e/grad_dump.c "$d/pf.c" -lm -o "$d/dump" 2>"$d/err"; then
    bad "$v: cc" "$(head -5 "$d/err")"; continue
  fi
  "$d/dump" 5 > "$d/out"
done
# params in order: W1 [12], b1 [4], h1.g [4], h1.V [16], h2.g [4], h2.V [16], W2 [8];
# line 1 of the dump is the loss, then the gradient
frozen_lines=" $(seq 2 13 | tr '\n' ' ') $(seq 22 37 | tr '\n' ' ') $(seq 42 57 | tr '\n' ' ') "
if [ -f "$tmp/plain/out" ] && [ -f "$tmp/frozen/out" ]; then
  msg=$(paste "$tmp/plain/out" "$tmp/frozen/out" | awk -v fz="$frozen_lines" '
    { frozen = index(fz, " " NR " ") > 0 }
    frozen && $2 != 0 { print "line " NR ": the frozen gradient is " $2 ", not 0"; bad = 1 }
    frozen && $1 == 0 { print "line " NR ": the plain gradient is 0 too: nothing is checked"; bad = 1 }
    !frozen && $1 != $2 { print "line " NR ": " $1 " without frozen, " $2 " with it"; bad = 1 }
    END { exit bad }')
  if [ $? -eq 0 ]; then ok "frozen params: gradient 0, the rest unchanged ($(wc -l < "$tmp/plain/out") values)"
  else bad "frozen params" "$msg"; fi
fi
# the words are read: --emit=ast shows them, and a frozen param's gradient
# is absent from --emit=grad
"$G" --emit=ast "$tmp/frozen/pf.nn" | grep -q '(param W1 .* frozen' && ok "ast: frozen" || bad "ast: frozen" "$("$G" --emit=ast "$tmp/frozen/pf.nn" | grep W1)"
"$G" --emit=ast "$tmp/frozen/pf.nn" | grep -q '(param b1 .*nodecay' && ok "ast: nodecay" || bad "ast: nodecay"
n=$("$G" --emit=grad "$tmp/frozen/pf.nn" | grep -c '^grad \(W1\|h1\.V\|h2\.V\) = 0   (frozen)$')
[ "$n" = 3 ] && ok "grad: frozen params' gradients are 0" || bad "grad: frozen" "$("$G" --emit=grad "$tmp/frozen/pf.nn" | grep '^grad')"
"$G" --check "$tmp/frozen/pf.nn" 2>&1 | grep -q . && bad "frozen: warnings" "$("$G" --check "$tmp/frozen/pf.nn" 2>&1)" || ok "frozen: no warning"
finish param_flags
