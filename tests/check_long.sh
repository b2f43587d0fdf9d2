#!/usr/bin/env bash
# check_long.sh (make check-long): the long runs outside `make test`.
# Trains the Fashion-MNIST examples (examples/fmnist.sh: an MLP and a CNN on
# the 60,000 training images) and asserts their test accuracy on the 10,000
# test images: MLP >= 0.885, CNN >= 0.916. Takes minutes; run it alone.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
echo "== examples/fmnist.sh"
bash examples/fmnist.sh 2>&1 | tee "$tmp/out"
rc=${PIPESTATUS[0]}
for m in mlp:0.885 cnn:0.916; do
  name=fmnist_${m%:*} t=${m#*:}
  a=$(sed -n "s/^$name: test accuracy \([0-9.]*\) .*/\1/p" "$tmp/out")
  if awk -v a="${a:-0}" -v t="$t" 'BEGIN { exit !(a >= t) }'; then
    echo "ok   $name test accuracy $a >= $t"
  else
    echo "FAIL $name test accuracy ${a:-none} < $t"; fail=1
  fi
done
[ "$rc" = 0 ] || { echo "FAIL examples/fmnist.sh exited with status $rc"; fail=1; }
exit $fail
