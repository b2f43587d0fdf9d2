#!/usr/bin/env bash
# golden.sh: every --emit stage of the examples against its golden file in
# tests/golden/ (MODEL.KIND). After an intended change of a format:
#   bash tests/e2e/golden.sh --update   and review the diff.
set -u
cd "$(dirname "$0")/../.."
G=$PWD/build/gradc
update=${1:-}
fail=0
for model in tiny linreg seed iris; do
  for kind in tokens ast graph grad h c dot stats; do
    want=tests/golden/$model.$kind
    got=$(cd examples && "$G" --emit=$kind $model.nn 2>&1)
    if [ "$update" = --update ]; then
      printf '%s\n' "$got" > "$want"
    elif ! diff -u "$want" <(printf '%s\n' "$got") > /tmp/golden.diff.$$ 2>&1; then
      echo "FAIL golden $model.$kind"; head -20 /tmp/golden.diff.$$; fail=1
    fi
    rm -f /tmp/golden.diff.$$
  done
done
# the explanation of rewrites
want=tests/golden/seed.explain
got=$(cd examples && "$G" --explain --emit=h seed.nn 2>&1 >/dev/null)
if [ "$update" = --update ]; then printf '%s\n' "$got" > "$want"
elif [ "$got" != "$(cat "$want")" ]; then echo "FAIL golden seed.explain"; diff <(echo "$got") "$want" | head; fail=1; fi
exit $fail
