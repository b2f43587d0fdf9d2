#!/usr/bin/env bash
# deploy.sh: a model trained by its executable, then compiled for deployment
# with `gradc -c --predict-only --embed-params`: the program built from that
# pair alone (no runtime, no parameter file) predicts what `./model predict`
# predicts; the predict-only pair is smaller than the full one. digits_bn
# (batch_norm) carries its running statistics into the source too.
set -u
cd "$(dirname "$0")/../.."
G=${GRADC:-$PWD/build/gradc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
for model in seed iris digits_bn; do
  case $model in seed) train=breast_cancer_train test=breast_cancer_test;; iris) train=iris_train test=iris_test;;
    digits_bn) train=digits_train test=digits_test;; esac
  U=$(echo $model | tr a-z A-Z)
  $G examples/$model.nn -o "$tmp/$model" && "$tmp/$model" train examples/data/$train.csv --standardize --epochs 5 \
     --save "$tmp/$model.params" -q > /dev/null 2>&1 || { echo "FAIL train $model"; fail=1; continue; }
  "$tmp/$model" predict "$tmp/$model.params" examples/data/$test.csv > "$tmp/want"
  d=$tmp/$model-deploy; mkdir -p "$d"
  if ! $G -c --predict-only --embed-params "$tmp/$model.params" examples/$model.nn -o "$d" 2> "$tmp/err"; then
    echo "FAIL gradc --embed-params $model: $(cat "$tmp/err")"; fail=1; continue; fi
  if grep -q "loss_grad" "$d/$model.c" "$d/$model.h"; then echo "FAIL predict-only $model has gradient code"; fail=1; fi
  real=float; grep -q "^precision double" examples/$model.nn && real=double
  std=; grep -q "${U}_STANDARDIZE" "$d/$model.h" && std=-DSTANDARDIZE
  grep -q "${U}_STATE_COUNT" "$d/$model.h" && std="$std -DSTATE_COUNT=${U}_STATE_COUNT"
  if ! cc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -I"$d" -include "$d/$model.h" -DMODEL=$model -DREAL=$real $std \
       -DPARAM_COUNT=${U}_PARAM_COUNT -DINPUT_SIZE=${U}_INPUT_SIZE -DOUTPUT_SIZE=${U}_OUTPUT_SIZE \
       -DMAX_BATCH=${U}_MAX_BATCH -DWORKSPACE_BYTES=${U}_WORKSPACE_BYTES \
       tests/e2e/deploy_main.c "$d/$model.c" -lm -o "$d/predict" 2> "$tmp/err"; then
    echo "FAIL cc deployed $model: $(head -5 "$tmp/err")"; fail=1; continue; fi
  "$d/predict" < examples/data/$test.csv > "$tmp/got"
  # the same up to the rounding of raw inputs to float before scaling (the runtime scales in double)
  if paste -d' ' "$tmp/want" "$tmp/got" | awk '{ k = NF / 2; for (i = 1; i <= k; i++) { d = $i - $(i + k); d = d < 0 ? -d : d;
       if (d > 1e-4 * (1e-3 + ($i < 0 ? -$i : $i))) bad = 1 } } END { exit bad }' && [ "$(wc -l < "$tmp/want")" = "$(wc -l < "$tmp/got")" ]; then
    echo "ok   $model: the deployed pair predicts what ./$model predict does ($(wc -l < "$tmp/got") rows, within 1e-4 relative)"
  else echo "FAIL $model: deployed predictions differ"; diff "$tmp/want" "$tmp/got" | head -5; fail=1; fi
  # sizes
  mkdir -p "$tmp/full"; $G -c examples/$model.nn -o "$tmp/full"
  cc -O2 -c "$tmp/full/$model.c" -I"$tmp/full" -o "$tmp/full.o"; cc -O2 -c "$d/$model.c" -I"$d" -o "$tmp/po.o"
  echo "     $model text bytes: full pair $(size "$tmp/full.o" | awk 'NR==2{print $1}'), predict-only $(size "$tmp/po.o" | awk 'NR==2{print $1}') (+ embedded params in its data)"
done
# a foreign or damaged file is refused
printf 'GRADCPRM garbage' > "$tmp/bad.params"
if $G -c --embed-params "$tmp/bad.params" examples/seed.nn -o "$tmp" 2> "$tmp/err"; then echo "FAIL damaged params accepted"; fail=1
else echo "ok   damaged params refused: $(cat "$tmp/err")"; fi
if [ -f "$tmp/seed.c" ]; then echo "FAIL output written despite the error"; fail=1; fi
exit $fail
