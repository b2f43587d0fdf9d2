#!/usr/bin/env bash
# fmnist.sh (make fmnist): train examples/fmnist_mlp.nn and fmnist_cnn.nn on
# Fashion-MNIST's 60,000 training images and score them on its 10,000 test
# images, from Debian's dataset-fashion-mnist files as installed (gzipped
# IDX). Installs the package when it is missing and this runs as root;
# otherwise prints the command. Prints, per model, the test accuracy, the
# wall time of training, and the epoch and time at which the test accuracy
# (measured after every epoch, not used for training) first reached the
# target; exits 1 when a model misses its target.
#
#   FMNIST_MODELS="mlp cnn"       which models
#   FMNIST_CFLAGS="-O3 -march=native"   how the generated C is compiled
#   FMNIST_DIR=DIR                the IDX files, when not where Debian puts them
set -u
cd "$(dirname "$0")/.." || exit 2
G=$PWD/build/gradc
MODELS=${FMNIST_MODELS:-mlp cnn}
CFLAGS=${FMNIST_CFLAGS:--O3 -march=native}
target() { case $1 in mlp) echo 0.885 ;; cnn) echo 0.916 ;; esac; }
now() { echo "${EPOCHREALTIME/,/.}"; }

# ---- the data
find_dir() {
  if [ -n "${FMNIST_DIR:-}" ]; then echo "$FMNIST_DIR"; return; fi
  local f
  f=$(dpkg -L dataset-fashion-mnist 2>/dev/null | grep '/t10k-images-idx3-ubyte.gz$' | head -1)
  [ -n "$f" ] && dirname "$f"
}
D=$(find_dir)
if [ -z "$D" ] || [ ! -f "$D/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing dataset-fashion-mnist (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
    D=$(find_dir)
  fi
  if [ -z "$D" ] || [ ! -f "$D/train-images-idx3-ubyte.gz" ]; then
    echo "fmnist: error: Fashion-MNIST is not installed; run: sudo apt-get install -y dataset-fashion-mnist" >&2
    echo "        (or set FMNIST_DIR to a directory with its four gzipped IDX files)" >&2
    exit 2
  fi
fi
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$D/$f.gz" ] || { echo "fmnist: error: $D/$f.gz is missing" >&2; exit 2; }
done
echo "== Fashion-MNIST from $D"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
for m in $MODELS; do
  t=$(target "$m")
  [ -n "$t" ] || { echo "fmnist: error: no model '$m' (mlp or cnn)" >&2; exit 2; }
  echo "== fmnist_$m.nn   (gradc --cflags \"$CFLAGS\"; target $t)"
  if ! "$G" "examples/fmnist_$m.nn" --cflags "$CFLAGS" -o "$tmp/$m" 2>"$tmp/err"; then
    echo "fmnist: error: gradc failed on examples/fmnist_$m.nn: $(head -3 "$tmp/err")" >&2; exit 1
  fi
  start=$(now)
  # each epoch's line, with the seconds since the start of training
  "$tmp/$m" train --images "$D/train-images-idx3-ubyte.gz" --labels "$D/train-labels-idx1-ubyte.gz" \
      --valid-images "$D/t10k-images-idx3-ubyte.gz" --valid-labels "$D/t10k-labels-idx1-ubyte.gz" \
      --save "$tmp/$m.params" 2>&1 >"$tmp/$m.out" | stdbuf -oL tr '\r' '\n' | grep --line-buffered '^epoch .*acc' |
    while IFS= read -r l; do printf '%7.1fs  %s\n' "$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')" "$l"; done |
    tee "$tmp/$m.log"
  rc=${PIPESTATUS[0]}
  wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" != 0 ]; then echo "fmnist: error: training fmnist_$m failed (status $rc)" >&2; cat "$tmp/$m.out" >&2; exit 1; fi
  "$tmp/$m" eval "$tmp/$m.params" --images "$D/t10k-images-idx3-ubyte.gz" --labels "$D/t10k-labels-idx1-ubyte.gz" \
    > "$tmp/$m.eval" 2>&1
  acc=$(awk '/^accuracy/ {print $2}' "$tmp/$m.eval")
  reach=$(awk -v t="$t" '{ for (i = 1; i < NF; i++) if ($i == "val_acc" && $(i + 1) >= t) { print $3 " at " $1; exit } }' "$tmp/$m.log")
  ok=MISSED
  if awk -v a="${acc:-0}" -v t="$t" 'BEGIN { exit !(a >= t) }'; then ok=ok; else status=1; fi
  echo "fmnist_$m: test accuracy ${acc:-none} (target $t: $ok), training wall time ${wall}s," \
       "target first reached at epoch ${reach:-never}"
done
exit $status
