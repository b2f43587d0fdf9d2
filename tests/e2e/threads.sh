#!/usr/bin/env bash
# threads.sh: gradc --threads. A model without state that uses each param
# many times per example (tests/models/minigpt.nn, a small transformer) has
# each batch split among the threads: `info` says so, and 30 steps of
# training on two threads give the losses of one thread (the parts' mean
# gradients weighted by their sizes equal the whole batch's, up to the order
# of float additions) and params that score the same on held-out text. A
# model with state (batch_norm) and an MLP share each product instead.
. "$(dirname "$0")/lib.bash"
if ! echo 'int main(void){return 0;}' | cc -fopenmp -x c - -o "$tmp/omp" 2>/dev/null; then
  echo "skip: the C compiler has no OpenMP (-fopenmp)"; finish threads; exit
fi
head -c 60000 examples/data/tinyshakespeare.txt > "$tmp/train.txt"
head -c 8000 "$tmp/train.txt" > "$tmp/held.txt" # characters all in the vocabulary
"$G" tests/models/minigpt.nn -o "$tmp/one" 2>"$tmp/err" &&
  "$G" tests/models/minigpt.nn -o "$tmp/two" --threads 2 2>>"$tmp/err" ||
  { bad "minigpt builds" "$(head -3 "$tmp/err")"; finish threads; exit; }
info=$(OMP_NUM_THREADS=2 "$tmp/two" info | grep '^threads')
[ "$info" = "threads    2, each batch split among them" ] && ok "minigpt --threads 2: $info" || bad "minigpt info" "$info"
"$tmp/one" train --text "$tmp/train.txt" --save "$tmp/one.p" >"$tmp/o1" 2>&1 || bad "train, one thread" "$(tail -2 "$tmp/o1")"
OMP_NUM_THREADS=2 "$tmp/two" train --text "$tmp/train.txt" --save "$tmp/two.p" >"$tmp/o2" 2>&1 || bad "train, two threads" "$(tail -2 "$tmp/o2")"
l1=$(grep -o 'loss [0-9.]*' "$tmp/o1" | awk '{print $2}' | tr '\n' ' ')
l2=$(grep -o 'loss [0-9.]*' "$tmp/o2" | awk '{print $2}' | tr '\n' ' ')
if [ -n "$l1" ] && [ "$(echo "$l1" | wc -w)" = "$(echo "$l2" | wc -w)" ] &&
   paste <(echo "$l1" | tr ' ' '\n') <(echo "$l2" | tr ' ' '\n') |
     awk 'NF == 2 { d = $1 - $2; if (d < 0) d = -d; if (d > 2e-3 * ($1 > 1 ? $1 : 1)) bad = 1 } END { exit bad }'; then
  ok "30 steps on two threads: the losses of one thread ($(echo "$l2" | wc -w) figures)"
else bad "losses differ between one and two threads" "one: $l1" "two: $l2"; fi
cmp -s "$tmp/one.p" "$tmp/two.p" && bad "the params of two threads are the same bytes: the batch was not split" ||
  ok "the params of two threads differ in their last bits (the batch was split)"
e1=$("$tmp/one" eval "$tmp/one.p" --text "$tmp/held.txt" | awk '/^loss/ {print $2}')
e2=$("$tmp/one" eval "$tmp/two.p" --text "$tmp/held.txt" | awk '/^loss/ {print $2}')
awk -v a="$e1" -v b="$e2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-3 * a) }' &&
  ok "the loss of the two param files on a piece of the text: $e1 and $e2" || bad "the two param files score differently" "$e1 vs $e2"
for f in examples/digits_bn.nn examples/seed.nn; do
  if "$G" "$f" -o "$tmp/m" --threads 2 2>"$tmp/err"; then
    info=$(OMP_NUM_THREADS=2 "$tmp/m" info | grep '^threads')
    [ "$info" = "threads    2, sharing each matrix product" ] && ok "$(basename "$f") --threads 2: $info" || bad "$f info" "$info"
  else bad "$f --threads 2 builds" "$(head -3 "$tmp/err")"; fi
done
finish threads
