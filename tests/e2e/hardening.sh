#!/usr/bin/env bash
# hardening.sh: an executable gradc builds (examples/iris.nn) on bad data and
# bad parameter files. Each case must end with exit status 1 (2 where
# docs/runtime.md says so: a file that cannot be written), a message that
# names the file (and for data the line and column, or the IDX record), the
# parameter file saved before byte-identical, and no temporary file left
# beside it. A few cases run again under valgrind (--error-exitcode=9).
# GRADC overrides the compiler.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
G=${GRADC:-$root/build/gradc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; return 0; }
D=examples/data

cp examples/iris.nn "$tmp/iris.nn"
( cd "$tmp" && "$G" iris.nn -o iris ) 2>"$tmp/err" || { bad "build iris" "$(head -3 "$tmp/err")"; exit 1; }
X=$tmp/iris
mkdir -p "$tmp/p"
P=$tmp/p/good.params
"$X" train $D/iris_train.csv --epochs 2 --save "$P" -q >/dev/null 2>"$tmp/err" || { bad "train" "$(head -3 "$tmp/err")"; exit 1; }
cp "$P" "$tmp/good.orig"

# expect NAME STATUS PATTERN CMD...: the status, a stderr line matching
# PATTERN, the saved params untouched, no temporary file in $tmp/p
expect() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" != "$want" ]; then bad "$name" "exit $rc, want $want: $(head -2 "$tmp/err")"
  elif ! grep -q -E -- "$pat" "$tmp/err"; then bad "$name" "message: $(head -2 "$tmp/err")" "want: $pat"
  elif ! cmp -s "$P" "$tmp/good.orig"; then bad "$name" "the saved params changed"
  elif [ "$(ls "$tmp/p")" != good.params ]; then bad "$name" "left in the params directory: $(ls "$tmp/p" | tr '\n' ' ')"
  else ok "$name: $(grep -m1 -E -- "$pat" "$tmp/err" | sed "s|$tmp/||g" | cut -c1-110)"; fi
}

# --------------------------------------------------------------- CSV data
csv=$tmp/d; mkdir -p "$csv"
# a longer file with one bad field at line 312 (header on line 1)
{ head -1 $D/iris_train.csv; for i in 1 2 3; do tail -n +2 $D/iris_train.csv; done; } | head -311 > "$csv/bad312.csv"
echo "5.1,3.5,1.4x,0.2,0" >> "$csv/bad312.csv"; tail -n +2 $D/iris_train.csv | head -20 >> "$csv/bad312.csv"
expect "csv bad field at line 312" 1 'bad312.csv:312:[0-9]+: error' "$X" train "$csv/bad312.csv" --save "$P" -q
{ head -5 $D/iris_train.csv; echo "5.1,3.5,1.4,0.2"; } > "$csv/cols.csv"
expect "csv wrong column count" 1 'cols.csv:6(:[0-9]+)?: error.*(column|field)' "$X" train "$csv/cols.csv" --save "$P" -q
{ head -5 $D/iris_train.csv; echo "5.1,nan,1.4,0.2,1"; } > "$csv/nan.csv"
expect "csv nan text" 1 'nan.csv:6:[0-9]+: error' "$X" train "$csv/nan.csv" --save "$P" -q
{ head -3 $D/iris_train.csv; head -c 10000000 /dev/zero | tr '\0' '7'; echo; } > "$csv/huge.csv"
expect "csv 10 MB line" 1 'huge.csv:4(:[0-9]+)?: error' "$X" train "$csv/huge.csv" --save "$P" -q
: > "$csv/empty.csv"
expect "csv empty file" 1 'empty.csv(:[0-9]+)*: error' "$X" train "$csv/empty.csv" --save "$P" -q
head -1 $D/iris_train.csv > "$csv/header.csv"
expect "csv header only" 1 'header.csv(:[0-9]+)*: error' "$X" train "$csv/header.csv" --save "$P" -q
expect "eval bad field" 1 'bad312.csv:312:[0-9]+: error' "$X" eval "$P" "$csv/bad312.csv"
expect "predict bad field" 1 'bad312.csv:312:[0-9]+: error' "$X" predict "$P" "$csv/bad312.csv"

# --------------------------------------------------------------- IDX data
# iris has 4 inputs: images of 2x2 bytes, labels below 3
python3 - "$csv" <<'PY'
import struct, sys
d = sys.argv[1]
n = 20
img = struct.pack('>IIII', 0x803, n, 2, 2) + bytes((i * 7) % 256 for i in range(n * 4))
lab = struct.pack('>II', 0x801, n) + bytes(i % 3 for i in range(n))
open(d + '/img.idx', 'wb').write(img)
open(d + '/lab.idx', 'wb').write(lab)
open(d + '/trunc.idx', 'wb').write(img[:-7])
open(d + '/magic.idx', 'wb').write(struct.pack('>I', 0x1f8b0800 ^ 0x0f0f0f0f) + img[4:])
open(d + '/labtrunc.idx', 'wb').write(lab[:5])
PY
if "$X" train --images "$csv/img.idx" --labels "$csv/lab.idx" --epochs 1 -q >/dev/null 2>"$tmp/err"; then ok "idx good files train"
else bad "idx good files" "$(head -2 "$tmp/err")"; fi
expect "idx truncated images" 1 'trunc.idx: error: .*trunc' "$X" train --images "$csv/trunc.idx" --labels "$csv/lab.idx" --save "$P" -q
expect "idx wrong magic" 1 'magic.idx: error: not an IDX file' "$X" train --images "$csv/magic.idx" --labels "$csv/lab.idx" --save "$P" -q
expect "idx truncated header" 1 'labtrunc.idx: error' "$X" train --images "$csv/img.idx" --labels "$csv/labtrunc.idx" --save "$P" -q

# --------------------------------------------------------- parameter files
pf=$tmp/pf; mkdir -p "$pf"
size=$(stat -c %s "$P")
head -c $((size / 2)) "$P" > "$pf/trunc.params"
expect "params truncated" 1 'trunc.params: error' "$X" eval "$pf/trunc.params" $D/iris_test.csv
cp "$P" "$pf/flip.params"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)*2//3] ^= 0x10; open(p,'wb').write(b)" "$pf/flip.params"
expect "params bit-flipped" 1 'flip.params: error' "$X" eval "$pf/flip.params" $D/iris_test.csv
: > "$pf/empty.params"
expect "params empty" 1 'empty.params: error' "$X" eval "$pf/empty.params" $D/iris_test.csv
cp examples/seed.nn "$tmp/seed.nn"
( cd "$tmp" && "$G" seed.nn -o seed ) 2>/dev/null &&
  "$tmp/seed" train $D/breast_cancer_train.csv --epochs 1 --save "$pf/seed.params" -q >/dev/null 2>&1
expect "params of another model" 1 'seed.params: error' "$X" eval "$pf/seed.params" $D/iris_test.csv
expect "resume from a damaged file" 1 'flip.params: error' "$X" train $D/iris_train.csv --resume "$pf/flip.params" --save "$P" -q

# ---------------------------------------------------- disk full while saving
# a file size limit below the params' size: the write fails halfway
lim=$(( (size / 1024) / 2 )); [ "$lim" -ge 1 ] || lim=1
if [ "$size" -gt 1024 ]; then
  expect "save with the disk full (ulimit -f $lim)" 2 'good.params: error' \
    bash -c "ulimit -f $lim; trap '' XFSZ; exec \"\$0\" \"\$@\"" "$X" train $D/iris_train.csv --epochs 1 --save "$P" -q
else
  # params smaller than one block: a tmpfs that is full, if mount works
  mnt=$tmp/full; mkdir -p "$mnt"
  if mount -t tmpfs -o size=4k tmpfs "$mnt" 2>/dev/null; then
    cp "$P" "$mnt/good.params" && head -c 8192 /dev/zero > "$mnt/fill" 2>/dev/null
    cp "$mnt/good.params" "$tmp/full.orig"
    "$X" train $D/iris_train.csv --epochs 1 --save "$mnt/good.params" -q >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc != 0 ] && grep -q 'good.params: error' "$tmp/err" && cmp -s "$mnt/good.params" "$tmp/full.orig" &&
       [ "$(ls "$mnt" | sort | tr '\n' ' ')" = "fill good.params " ]; then
      ok "save on a full tmpfs: exit $rc, $(head -1 "$tmp/err" | sed "s|$tmp/||g")"
    else bad "save on a full tmpfs" "exit $rc: $(head -2 "$tmp/err")" "left: $(ls "$mnt")"; fi
    umount "$mnt"
  else
    # ulimit in bytes is per 512- or 1024-byte block: limit 0 makes any write fail
    expect "save with the disk full (ulimit -f 0)" 2 'error' \
      bash -c "ulimit -f 0; trap '' XFSZ; exec \"\$0\" \"\$@\"" "$X" train $D/iris_train.csv --epochs 1 --save "$P" -q
  fi
fi

# ---------------------------------------------------------------- valgrind
if [[ "${CC:-}" == *-fsanitize* ]]; then
  echo "skip valgrind (the executable is built with sanitizers: tests/sanitize.sh)"
elif command -v valgrind >/dev/null 2>&1; then
  for c in "csv:$csv/bad312.csv" "params:$pf/flip.params" "idx:$csv/trunc.idx"; do
    kind=${c%%:*} f=${c#*:}
    case $kind in
      csv) args="eval $P $f" ;;
      params) args="eval $f $D/iris_test.csv" ;;
      idx) args="eval $P --images $f --labels $csv/lab.idx" ;;
    esac
    valgrind --error-exitcode=9 -q --leak-check=full "$X" $args >/dev/null 2>"$tmp/vg"; rc=$?
    if [ $rc = 1 ] && ! grep -q '^==[0-9]*==' "$tmp/vg"; then ok "valgrind $kind error: clean, exit 1"
    else bad "valgrind $kind error" "exit $rc" "$(grep -m5 '^==' "$tmp/vg")"; fi
  done
else
  echo "skip valgrind (not installed)"
fi

echo "hardening: $pass passed, $fail failed"
[ "$fail" = 0 ]
