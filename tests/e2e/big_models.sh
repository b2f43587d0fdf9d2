#!/usr/bin/env bash
# big_models.sh: long models must cost the front end linear time and memory.
# Generated here: a chain of 100000 bindings (a1 = x * w, a2 = a1 * 2, ...)
# and 10000 small dense layers, each checked by gradc --check within a
# generous bound (a name looked up by a scan of all earlier names, the
# params' array copied at each param, or a walk of the graph per binding made
# the chain take minutes and the layers gigabytes). With build/gradc under
# test, the address space is limited too (not under a sanitizer, which
# reserves far more than it uses).
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
finish big_models
