#!/usr/bin/env bash
# big_models.sh: long models must cost the front end linear time and memory.
# Generated here: a chain of 100000 bindings (a1 = x * w, a2 = a1 * 2, ...)
# and 10000 small dense layers, each checked by gradc --check within a
# generous bound (a name looked up by a scan of all earlier names, the
# params' array copied at each param, or a walk of the graph per binding made
# the chain take minutes and the layers gigabytes). With build/gradc under
# test, the address space is limited too (not under a sanitizer, which
# reserves far more than it uses).
# Then sizes past 32 bits: W[4096, 4096] at batch 1048576 (its FLOPs and
# workspace counted in 64 bits, not wrapped in an int), and 8200 values of
# 2^50 bytes each alive at once in loss_grad, a workspace past 2^63 bytes:
# a located error, not a header whose WORKSPACE_BYTES no C type holds.
. "$(dirname "$0")/lib.bash"
python3=$(command -v python3 || echo /usr/bin/python3)
$python3 - "$tmp" <<'EOF'
import sys
d = sys.argv[1]
with open(d + '/chain.nn', 'w') as f:
    n = 100000
    f.write('input x[1]\ntarget y[1]\nparam w[1]\na1 = x * w\n')
    f.writelines('a%d = a%d * 2\n' % (i, i - 1) for i in range(2, n + 1))
    f.write('minimize mse(a%d, y)\n' % n)
with open(d + '/dense.nn', 'w') as f:
    n = 10000
    f.write('input x[4]\ntarget y[4]\nh1 = dense(x, 4, relu)\n')
    f.writelines('h%d = dense(h%d, 4, relu)\n' % (i, i - 1) for i in range(2, n + 1))
    f.write('minimize mse(h%d, y)\n' % n)
with open(d + '/toobig.nn', 'w') as f:
    n = 8200
    f.write('input x[16384, 16384]\ntarget y[1]\nparam w[1]\na1 = tanh(x * w)\n')
    f.writelines('a%d = tanh(a%d)\n' % (i, i - 1) for i in range(2, n + 1))
    f.write('minimize mse(sum(a%d), y)\ntrain {\n  batch 1048576\n}\n' % n)
EOF
limit=
[ -z "${GRADC:-}" ] && limit="ulimit -v 1000000;" # 1 GB
for m in chain dense; do
  if bash -c "$limit timeout 20 \"\$@\"" _ "$G" --check "$tmp/$m.nn" >"$tmp/out" 2>&1; then
    ok "$m: --check within 20 s"
  else
    bad "$m: --check (exit $?)" "$(head -3 "$tmp/out")"
  fi
done
printf 'input x[4096]\ntarget y[4096]\nparam W[4096, 4096]\nyhat = W @ x\nminimize mse(yhat, y)\ntrain {\n  batch 1048576\n}\n' > "$tmp/huge.nn"
"$G" --emit=stats "$tmp/huge.nn" > "$tmp/out" 2>&1
# forward per example: 2 * 4096^2 for the product, 3 * 4096 + 1 for mse
grep -q '^flops per example: forward 33566721, backward 33554448,' "$tmp/out" &&
  grep -q '^workspace loss_grad: 34363932672 bytes' "$tmp/out" && ok "W[4096, 4096] at batch 1048576: stats" ||
  bad "W[4096, 4096] at batch 1048576: stats" "$(head -4 "$tmp/out")"
"$G" --emit=h "$tmp/toobig.nn" > "$tmp/out" 2>"$tmp/err"; rc=$?
want="$tmp/toobig.nn:8195:9: error: at a batch of 1048576, loss_grad() would need a workspace of 2^63 bytes or more"
if [ $rc = 1 ] && [ ! -s "$tmp/out" ] && [[ "$(head -1 "$tmp/err")" == "$want"* ]]; then ok "a workspace past 2^63 bytes: located error"
else bad "a workspace past 2^63 bytes (exit $rc)" "$(head -2 "$tmp/err")"; fi
# a flat sum of 1500 terms is a long expression, not a deep one to a reader:
# it compiles (the depth limit is 2000)
{ printf 'input x[2]\ntarget y[1]\nparam w[1, 2]\ns = w @ x'
  for i in $(seq 1499); do printf ' + w @ x'; done; printf '\nminimize mse(s, y)\n'; } > "$tmp/sum1500.nn"
if "$G" -c "$tmp/sum1500.nn" -o "$tmp/" > "$tmp/out" 2>&1; then ok "a flat sum of 1500 terms compiles"
else bad "a flat sum of 1500 terms compiles" "$(head -c 300 "$tmp/out")"; fi
finish big_models
