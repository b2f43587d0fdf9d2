#!/usr/bin/env bash
# strict.sh: the generated C of every example (examples/*.nn) and test model
# (tests/models/*.nn, tests/gradcheck/*.nn) compiles without a single
# warning under gcc and clang with
#   -std=c99 -Wall -Wextra -pedantic -Werror -Wconversion -Wshadow
# in float and in double (a copy of the model with `precision double` added,
# or taken out where the model has it), for each of `gradc -c`,
# `-c --predict-only` and, when gradc accepts the model as small enough,
# `-c --scalar`. Then each model's generated pair runs once, float and
# double, linked with tests/e2e/grad_dump.c (loss, gradient and predictions
# of a pseudo-random batch) under -fsanitize=undefined
# -fno-sanitize-recover=all: any undefined behaviour stops it.
# GRADC overrides the compiler; STRICT_CCS the C compilers (default "gcc clang").
set -u
cd "$(dirname "$0")/../.."
G=${GRADC:-$PWD/build/gradc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ccs=${STRICT_CCS:-gcc clang}
STRICT="-std=c99 -Wall -Wextra -pedantic -Werror -Wconversion -Wshadow"
pass=0 fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; return 0; }

available=""
for cc in $ccs; do command -v "$cc" >/dev/null 2>&1 && available="$available $cc"; done
[ -n "$available" ] || { echo "FAIL no C compiler among: $ccs"; exit 1; }

# the model with the other precision: `precision double` added after the
# leading comments, or taken out
other_precision() { # SRC DST
  if grep -q '^[[:space:]]*precision[[:space:]]\+double' "$1"; then
    sed 's/^[[:space:]]*precision[[:space:]]\+double.*$/# (precision double taken out by strict.sh)/' "$1" > "$2"
  else
    awk 'done || /^[[:space:]]*(#|$)/ { print; next } { print "precision double"; print; done = 1 }
         END { if (!done) print "precision double" }' "$1" > "$2"
  fi
}

for f in ${STRICT_ONLY:-examples/*.nn tests/models/*.nn tests/gradcheck/*.nn}; do
  [ -f "$f" ] || continue
  n=$(basename "$f" .nn)
  for prec in float double; do
    src=$tmp/$n-$prec.nn
    if [ $prec = float ]; then
      if grep -q '^[[:space:]]*precision[[:space:]]\+double' "$f"; then other_precision "$f" "$src"; else cp "$f" "$src"; fi
    else
      if grep -q '^[[:space:]]*precision[[:space:]]\+double' "$f"; then cp "$f" "$src"; else other_precision "$f" "$src"; fi
    fi
    for mode in full predict-only scalar; do
      d=$tmp/$n-$prec-$mode; mkdir -p "$d"
      case $mode in full) flag= ;; predict-only) flag=--predict-only ;; scalar) flag=--scalar ;; esac
      if ! "$G" -c $flag "$src" -o "$d" 2>"$d/err"; then
        if [ $mode = scalar ] && grep -q -E "writes out at most|--scalar does not" "$d/err"; then
          echo "skip $n $prec scalar: $(head -1 "$d/err" | sed 's/.*error: //')"; continue
        fi
        bad "$n $prec $mode: gradc -c $flag" "$(head -3 "$d/err")"; continue
      fi
      for cc in $available; do
        if $cc $STRICT -I"$d" -c "$d"/*.c -o "$d/o.o" 2>"$d/cc.err"; then ok "$n $prec $mode $cc"
        else bad "$n $prec $mode $cc" "$(grep -m3 -E 'error|warning' "$d/cc.err")"; fi
      done
    done
    # one run under UBSan, of the full build
    d=$tmp/$n-$prec-full
    h=$(ls "$d"/*.h 2>/dev/null | head -1)
    if [ -z "$h" ]; then bad "$n $prec ubsan: no generated header"; continue; fi
    c=${h%.h}.c
    p=$(sed -n 's/^#define \([A-Za-z0-9_]*\)PARAM_COUNT .*/\1/p' "$h" | head -1)
    pre=$(sed -n 's/^[a-z].*[ *]\([A-Za-z0-9_]*_\)loss_grad(.*/\1/p' "$h" | head -1)
    nclass=$(sed -n 's/.*class(\([0-9]*\)).*/\1/p' "$f" | head -1)
    real=float; [ $prec = double ] && real=double
    if ! gcc -std=c99 -O1 -g -fsanitize=undefined -fno-sanitize-recover=all -I"$d" -include "$h" \
         -DMODEL="${pre%_}" -DREAL=$real -DPARAM_COUNT=${p}PARAM_COUNT -DINPUT_SIZE=${p}INPUT_SIZE \
         -DTARGET_SIZE=${p}TARGET_SIZE -DOUTPUT_SIZE=${p}OUTPUT_SIZE -DMAX_BATCH=${p}MAX_BATCH \
         -DWORKSPACE_BYTES=${p}WORKSPACE_BYTES $(grep -q "STATE_COUNT" "$h" && echo -DSTATE_COUNT=${p}STATE_COUNT) \
         tests/e2e/grad_dump.c "$c" -lm -o "$d/dump" 2>"$d/ub.err"; then
      bad "$n $prec ubsan build" "$(grep -m3 -E 'error|warning' "$d/ub.err")"; continue
    fi
    if "$d/dump" 5 ${nclass:-0} > "$d/out" 2>"$d/ub.err" && ! grep -q 'runtime error' "$d/ub.err"; then
      ok "$n $prec runs clean under -fsanitize=undefined ($(wc -l < "$d/out") values)"
    else bad "$n $prec ubsan run" "$(head -3 "$d/ub.err")"; fi
  done
done
echo "strict: $pass passed, $fail failed"
[ "$fail" = 0 ]
