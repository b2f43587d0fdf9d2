#!/usr/bin/env bash
# run_e2e.sh: the end-to-end tests, run by `make test` after the unit tests.
# They run the real build/gradc on real model files and the executables it
# builds on real data:
#   - diagnostics: every tests/diagnostics/*.nn gets exactly its expected
#     first error (first line '# expect: LINE:COL: error: ...'), exit 1, and
#     no output file; each '# also: LINE:COL: error: ...' line is a later
#     diagnostic that must be reported too (errors after a syntax error),
#     and text on a '# none: TEXT' line must appear in no diagnostic (a
#     cascade the first error must not cause)
#   - the command line: --help, --version, bad options, missing files, -c
#   - the examples: trained to their targets (seed >= 0.95 and iris >= 0.93
#     test accuracy, linreg = the normal equations within 1e-3)
#   - generated C: clean under gcc and clang -std=c99 -Wall -Wextra -pedantic -Werror
#   - gradients: tests/gradcheck.sh, finite differences in double for every op
# It ends with the line 'N passed, N failed'.
# Environment: GRADC (the compiler to test, default build/gradc; the e2e
# scripts honour it too), CC (what gradc compiles generated code with) and
# E2E_SKIP (names of tests/e2e scripts to leave out, e.g. "install"), as
# tests/sanitize.sh sets them.
set -u
cd "$(dirname "$0")/.."
root=$PWD
G=${GRADC:-$root/build/gradc}   # tests/sanitize.sh points it at build-san/gradc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass+1)); [ -n "${VERBOSE:-}" ] && echo "ok   $1"; return 0; }
bad() { fail=$((fail+1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; return 0; }

# -------------------------------------------------------------- diagnostics
echo "== diagnostics"
for f in tests/diagnostics/*.nn; do
  name=$(basename "$f" .nn)
  want="$f:$(sed -n '1s/^# expect: //p' "$f")"
  ( cd "$tmp" && mkdir -p d && cd d && "$G" "$root/$f" >/dev/null 2>"$tmp/err"; echo $? >"$tmp/rc" )
  got=$(sed "s|$root/||" "$tmp/err" | grep -m1 -E 'error|warning')
  rc=$(cat "$tmp/rc")
  if [ "$got" != "$want" ]; then bad "diag $name" "want: $want" "got:  $got"
  elif [ "$rc" != 1 ]; then bad "diag $name" "exit status $rc, want 1"
  elif [ -n "$(ls -A "$tmp/d")" ]; then bad "diag $name" "left output: $(ls "$tmp/d")"
  elif missing=$(sed -n 's/^# also: //p' "$f" | while IFS= read -r a; do
         sed "s|$root/||" "$tmp/err" | grep -qxF "$f:$a" || echo "$a"; done) && [ -n "$missing" ]; then
    bad "diag $name" "missing later diagnostic: $missing"
  elif unwanted=$(sed -n 's/^# none: //p' "$f" | while IFS= read -r a; do
         grep -qF -- "$a" "$tmp/err" && echo "$a"; done) && [ -n "$unwanted" ]; then
    bad "diag $name" "reported, and must not be: $(grep -F -- "$unwanted" "$tmp/err" | head -2)"
  else ok "diag $name"; fi
  rm -rf "$tmp/d"
done
# binary garbage and empty files: located errors, exit 1, no crash
head -c 4096 /dev/urandom > "$tmp/garbage.nn" 2>/dev/null || printf '\x00\x01\xff\xfe' > "$tmp/garbage.nn"
"$G" --check "$tmp/garbage.nn" >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc = 1 ] && grep -q "garbage.nn:[0-9]*:[0-9]*: error" "$tmp/err"; then ok garbage; else bad garbage "exit $rc: $(head -2 "$tmp/err")"; fi
: > "$tmp/empty.nn"
"$G" --check "$tmp/empty.nn" >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc = 1 ] && grep -q "empty.nn:1:1: error: the model has no objective" "$tmp/err"; then ok empty; else bad empty "exit $rc: $(head -2 "$tmp/err")"; fi

# -------------------------------------------------------------- command line
echo "== command line"
expect_rc() { # expect_rc NAME RC CMD...
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -2 "$tmp/err")"; fi
}
expect_rc help 0 "$G" --help
grep -q "usage: gradc" "$tmp/out" && ok help-text || bad help-text
expect_rc version 0 "$G" --version
grep -q "^gradc [0-9]" "$tmp/out" && ok version-text || bad version-text
expect_rc bad-option 2 "$G" --frobnicate examples/seed.nn
expect_rc no-file 2 "$G"
expect_rc missing-file 2 "$G" "$tmp/nonexistent.nn"
grep -q "cannot read '$tmp/nonexistent.nn'" "$tmp/err" && ok missing-file-msg || bad missing-file-msg "$(cat "$tmp/err")"
expect_rc bad-emit 2 "$G" --emit=assembly examples/seed.nn
expect_rc bad-batch 2 "$G" --batch 0 examples/seed.nn
for k in tokens ast graph grad c h dot stats; do
  expect_rc "emit-$k" 0 "$G" --emit=$k examples/seed.nn
  [ -s "$tmp/out" ] && ok "emit-$k-output" || bad "emit-$k-output" "empty"
done
expect_rc check 0 "$G" --check examples/seed.nn
mkdir -p "$tmp/c"
expect_rc c-only 0 "$G" -c examples/seed.nn -o "$tmp/c"
[ -f "$tmp/c/seed.c" ] && [ -f "$tmp/c/seed.h" ] && [ "$(ls "$tmp/c" | wc -l)" = 2 ] && ok c-files || bad c-files "$(ls "$tmp/c")"
expect_rc c-not-c-file 2 "$G" -c examples/seed.nn -o "$tmp/c/seed.txt"
# a failing build leaves the previous executable intact
cp examples/seed.nn "$tmp/keep.nn"
( cd "$tmp" && "$G" keep.nn ) && cp "$tmp/keep" "$tmp/keep.orig"
expect_rc bad-cc 2 env -C "$tmp" "$G" --cc /bin/false keep.nn
cmp -s "$tmp/keep" "$tmp/keep.orig" && ok keep-intact || bad keep-intact
[ -z "$(ls "$tmp" | grep tmp)" ] && ok no-temp-left || bad no-temp-left "$(ls "$tmp")"

# ------------------------------------------------------------- generated C
echo "== generated C is clean"
ccs="gcc"; command -v clang >/dev/null && ccs="gcc clang"
for f in examples/*.nn tests/diagnostics/../gradcheck/*.nn; do
  [ -f "$f" ] || continue
  n=$(basename "$f" .nn); d=$tmp/gen-$n; mkdir -p "$d"
  if ! "$G" -c "$f" -o "$d" 2>"$tmp/err"; then bad "gen $n" "$(head -3 "$tmp/err")"; continue; fi
  for cc in $ccs; do
    if $cc -std=c99 -Wall -Wextra -pedantic -Werror -c "$d"/*.c -o "$d/o.o" 2>"$tmp/err"; then ok "gen $n $cc"
    else bad "gen $n $cc" "$(head -5 "$tmp/err")"; fi
  done
done

# ----------------------------------------------------------------- examples
echo "== examples"
D=examples/data
build() { "$G" "examples/$1.nn" -o "$tmp/$1" 2>"$tmp/err" || { bad "build $1" "$(head -3 "$tmp/err")"; return 1; }; }
acc() { awk '/^accuracy/ {print $2}' "$1"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

if build seed; then
  "$tmp/seed" train $D/breast_cancer_train.csv --standardize --save "$tmp/seed.params" -q 2>"$tmp/err" &&
  "$tmp/seed" eval "$tmp/seed.params" $D/breast_cancer_test.csv > "$tmp/eval" 2>&1
  a=$(acc "$tmp/eval")
  if ge "${a:-0}" 0.95; then ok "seed accuracy $a"; else bad "seed accuracy ${a:-none} < 0.95" "$(cat "$tmp/err" "$tmp/eval" | head -3)"; fi
  n=$("$tmp/seed" predict "$tmp/seed.params" $D/breast_cancer_test.csv | wc -l)
  [ "$n" = 114 ] && ok "seed predict lines" || bad "seed predict lines $n"
fi
if build iris; then
  "$tmp/iris" train $D/iris_train.csv --standardize --save "$tmp/iris.params" -q 2>"$tmp/err" &&
  "$tmp/iris" eval "$tmp/iris.params" $D/iris_test.csv > "$tmp/eval" 2>&1
  a=$(acc "$tmp/eval")
  if ge "${a:-0}" 0.93; then ok "iris accuracy $a"; else bad "iris accuracy ${a:-none} < 0.93" "$(cat "$tmp/err" "$tmp/eval" | head -3)"; fi
fi
if build tiny; then
  "$tmp/tiny" train $D/tiny.csv --save "$tmp/tiny.params" 2>"$tmp/log"
  first=$(awk '/^epoch/ {print $4; exit}' "$tmp/log"); last=$(awk '/^epoch/ {v=$4} END {print v}' "$tmp/log")
  if awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f / 10) }'; then ok "tiny loss $first -> $last"
  else bad "tiny loss $first -> $last" "$(tail -2 "$tmp/log")"; fi
fi
if build linreg; then
  cc -O2 -o "$tmp/lstsq" tests/e2e/lstsq.c -lm
  "$tmp/linreg" train $D/diabetes.csv --standardize --save "$tmp/linreg.params" -q 2>"$tmp/err"
  "$tmp/lstsq" $D/diabetes.csv 10 > "$tmp/ref"
  "$tmp/linreg" params "$tmp/linreg.params" > "$tmp/got" 2>>"$tmp/err"
  if worst=$(awk 'NR==FNR {ref[FNR]=$1; n=FNR; next} {got[FNR]=$1} END {
        if (FNR != n) { print "count"; exit 1 }
        w = 0; for (i = 1; i <= n; i++) { d = got[i] - ref[i]; d = d < 0 ? -d : d;
          s = ref[i] < 0 ? -ref[i] : ref[i]; r = d / (s > 1 ? s : 1); if (r > w) w = r }
        printf "%.3g", w; exit !(w < 1e-3) }' "$tmp/ref" <(tr ' ' '\n' < "$tmp/got" | grep -v '^$' | grep -v '^[A-Za-z_]')); then
    ok "linreg = normal equations (worst relative error $worst)"
  else bad "linreg vs normal equations: $worst" "$(paste "$tmp/ref" <(tr ' ' '\n' < "$tmp/got" | grep -v '^$' | grep -v '^[A-Za-z_]') | head -12)" "$(head -3 "$tmp/err")"; fi
fi

# ---------------------------------------------------------------- gradients
echo "== gradients (finite differences, double)"
if bash tests/gradcheck.sh > "$tmp/gc" 2>&1; then ok "gradcheck: $(tail -1 "$tmp/gc")"; cat "$tmp/gc" | grep -v '^gradcheck' | sed 's/^/  /'
else bad gradcheck "$(grep -v '^ok' "$tmp/gc")"; fi

# ------------------------------------------------------- more e2e scripts
for f in tests/e2e/*.sh; do
  [ -f "$f" ] || continue
  case " ${E2E_SKIP:-} " in *" $(basename "$f" .sh) "*) echo "== $f (skipped: E2E_SKIP)"; continue ;; esac
  echo "== $f"
  if bash "$f" > "$tmp/e2e.out" 2>&1; then ok "$f"; else bad "$f" "$(tail -20 "$tmp/e2e.out")"; fi
done

echo
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
