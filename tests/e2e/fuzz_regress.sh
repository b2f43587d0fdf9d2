#!/usr/bin/env bash
# fuzz_regress.sh: replays every input the fuzzer ever stopped on
# (tests/fuzz/regressions/, saved there by tests/fuzz/run.sh) through the
# real build/gradc, with --check, --emit=tokens, --emit=ast and -c: each
# must end with exit status 0 or 1 (never a signal, a sanitizer report or a
# hang: 20 s each), and on status 1 write no output file.
# GRADC overrides the compiler (tests/sanitize.sh runs it under ASan/UBSan).
set -u
cd "$(dirname "$0")/../.."
G=${GRADC:-$PWD/build/gradc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
shopt -s nullglob
for f in tests/fuzz/regressions/*; do
  [ -f "$f" ] || continue
  n=$(basename "$f")
  for mode in --check --emit=tokens --emit=ast -c; do
    rm -rf "$tmp/o"; mkdir -p "$tmp/o"
    if [ "$mode" = -c ]; then args="-c $f -o $tmp/o"; else args="$mode $f"; fi
    timeout 20 "$G" $args >/dev/null 2>"$tmp/err"; rc=$?
    if [ "$rc" -gt 1 ] || grep -q -E 'Sanitizer|runtime error' "$tmp/err"; then
      echo "FAIL $n $mode: exit $rc"; head -5 "$tmp/err" | sed 's/^/     /'; fail=$((fail+1))
    elif [ "$rc" = 1 ] && [ -n "$(ls -A "$tmp/o")" ]; then
      echo "FAIL $n $mode: exit 1 but wrote $(ls "$tmp/o")"; fail=$((fail+1))
    elif [ "$rc" = 1 ] && ! grep -q -E ':[0-9]+:[0-9]+: error|: error' "$tmp/err"; then
      echo "FAIL $n $mode: exit 1 without an error message"; fail=$((fail+1))
    else pass=$((pass+1)); fi
  done
done
echo "ok fuzz regressions: $pass runs passed, $fail failed"
[ "$fail" = 0 ]
