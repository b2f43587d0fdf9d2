#!/usr/bin/env bash
# text.sh: text models through the executable's command line, with the
# hand-written bigram model of tests/rt_fake_model.c (input int(V)[T], target
# class(V)[T]) linked to the runtime like generated code (tests/e2e/text_fake.c):
# train --text (progress, --validate, --log, --save, --resume), eval --text
# (nats and bits per character), sample (a prompt continued, temperature 0,
# seeds, top-k), the vocabulary of V < 256 and bytes for V = 256, unknown
# characters, --help; and the glue gradc writes (stateless adapters, flags,
# vocab, steps).
set -u
cd "$(dirname "$0")/../.."
root=$PWD
G=${GRADC:-$root/build/gradc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; fail=1; }

CC=${CC:-cc}
build() { # NAME FLAGS...
  local n=$1; shift
  $CC -O1 -std=c99 -Wall -Wextra -Iruntime -Itests "$@" tests/e2e/text_fake.c build/libgradcrt.a \
    -lz -lm -o "$tmp/$n" 2> "$tmp/cc.err" || { bad "build $n" "$(head -5 "$tmp/cc.err")"; exit 1; }
}
build bytes -DTEXT_V=256 -DTEXT_T=8
build chars -DTEXT_V=40 -DTEXT_T=8
build small -DTEXT_V=8 -DTEXT_T=8
build cosine -DTEXT_V=40 -DTEXT_T=8 -DSCHED_COSINE
cd "$tmp"

# a text of 28 distinct characters: the same sentence over and over
for i in $(seq 60); do echo "the quick brown fox jumps over the lazy dog"; done > fox.txt

# ---- train --text: progress lines, validation, log, the vocabulary saved
if ./chars train --text fox.txt --steps 200 --validate 0.1 --save c.params --log c.csv > out 2> err; then
  n=$(grep -c '^step [0-9]*/200  loss [0-9.e+-]*  val_loss [0-9.e+-]*  lr [0-9.e+-]*  [0-9.]*[kMG]\? tok/s  ' err)
  [ "$n" = 10 ] && ok "train --text: 10 progress lines with loss, val_loss, lr, tok/s" || bad "progress lines: $n" "$(cat err)"
  head -1 c.csv | grep -qx 'step,loss,acc,val_loss,val_acc,lr,seconds' && [ "$(wc -l < c.csv)" = 11 ] &&
    ok "--log: a row per progress line, counted in steps" || bad "log" "$(head -3 c.csv)"
  grep -q '^valid loss ' out && grep -q '^valid bits per character ' out && ok "train prints the validation loss and bits" || bad "summary" "$(cat out)"
else bad "train --text" "$(cat err)"; fi

# ---- eval --text: nats and bits per character
if ./chars eval c.params --text fox.txt > out 2> err; then
  python3 - out <<'PY' && ok "eval --text: loss $(sed -n 's/^loss //p' out) nats = $(sed -n 's/^bits per character //p' out) bits per character" || bad "eval --text" "$(cat out)"
import math, sys
v = dict(l.rsplit(' ', 1) for l in open(sys.argv[1]).read().split('\n') if l)
nats, bits = float(v['loss']), float(v['bits per character'])
assert abs(bits - nats / math.log(2)) < 1e-5 * bits and nats < 1.2, v
PY
  grep -q 'windows of 9 characters' err && ok "eval --text says how many windows it scored" || bad "eval note" "$(cat err)"
else bad "eval --text" "$(cat err)"; fi

# ---- sample
./chars sample c.params --prompt "the quick" --tokens 30 --temperature 0 > s1 2> err &&
  head -c 9 s1 | grep -qx 'the quick' && [ "$(wc -c < s1)" = 40 ] &&
  ok "sample --temperature 0: the prompt and 30 characters: $(head -1 s1)" || bad "sample" "$(cat s1 err)"
./chars sample c.params --prompt "the" --tokens 40 --seed 7 > a1 && ./chars sample c.params --prompt "the" --tokens 40 --seed 7 > a2 &&
  ./chars sample c.params --prompt "the" --tokens 40 --seed 8 > a3 &&
  cmp -s a1 a2 && ! cmp -s a1 a3 && ok "sample: the same seed draws the same text, another seed another" || bad "sample seeds" "$(cat a1 a2 a3)"
./chars sample c.params --prompt "the" --tokens 40 --top-k 1 --seed 3 > k1 && ./chars sample c.params --prompt "the" --tokens 40 --temperature 0 > k0 &&
  cmp -s k1 k0 && ok "sample --top-k 1 is the likeliest character each time" || bad "top-k 1" "$(cat k1 k0)"
./chars sample c.params --tokens 20 --temperature 0 > n0 2> err && [ "$(wc -c < n0)" = 21 ] &&
  ok "sample without a prompt starts after a newline: $(cat n0)" || bad "no prompt" "$(cat n0 err)"
./chars sample c.params --prompt "ZeQ!" > out 2> err; rc=$?
[ $rc = 1 ] && grep -q "^--prompt: error: 'Z', 'Q', '!' are not in the vocabulary of c.params (the 28 characters of the training text)" err &&
  ok "unknown characters in a prompt: exit 1, each named" || bad "prompt chars: exit $rc" "$(cat err)"
printf 'the quick\nbrown FOX\n' > other.txt
./chars eval c.params --text other.txt > out 2> err; rc=$?
[ $rc = 1 ] && grep -q "^other.txt:2:7: error: character 'F' is not in the vocabulary of c.params" err &&
  ok "eval --text: an unknown character named with its line and column" || bad "eval unknown: exit $rc" "$(cat err)"

# ---- vocabulary sizes
./small train --text fox.txt --steps 5 -q > out 2> err; rc=$?
[ $rc = 1 ] && grep -q "fox.txt: error: 28 distinct characters (bytes), but the model's vocabulary holds 8 (its input is int(8))" err &&
  ok "more characters than V: exit 1, said" || bad "V too small: exit $rc" "$(cat err)"
./bytes train --text fox.txt --steps 100 --save b.params -q > out 2> err && ./bytes sample b.params --prompt "lazy d" --tokens 2 --temperature 0 > s 2>&1 &&
  [ "$(cat s)" = "lazy dog" ] && ok "V = 256 reads bytes: 'lazy d' continues '$(cat s)'" || bad "bytes" "$(cat err s)"
./bytes params b.params > /dev/null && ok "a bytes model's file loads without a vocabulary" || bad "bytes params"
printf 'caf\xc3\xa9 ' > u.txt; for i in $(seq 20); do cat u.txt; done > utf.txt
./chars train --text utf.txt --steps 50 --save u.params -q > /dev/null 2> err && ./chars sample u.params --prompt "caf" --tokens 3 --temperature 0 > s 2>&1 &&
  [ "$(cat s)" = "$(printf 'caf\xc3\xa9 ')" ] && ok "UTF-8 text: characters are bytes, sampled back whole" || bad "utf-8" "$(cat err s)"

# ---- resume: 100 steps straight, 40 then 60
./cosine train --text fox.txt --save r1.params -q > out 2> err &&
  ./cosine train --text fox.txt --stop-after 40 --save r2.params -q > out 2>> err &&
  ./cosine train --text fox.txt --resume r2.params --save r3.params -q > out 2>> err &&
  cmp -s r1.params r3.params && ok "train --text --resume: 40 + 60 steps give the bytes of 100" || bad "resume" "$(cat err)"
./cosine train --text fox.txt --log l.csv -q > out 2> err
python3 - l.csv <<'PY' && ok "cosine(warmup = 10, min_lr = 0.01): lr 0.1 * 10/10 at step 10, 0.01 at step 100" || bad "cosine lr" "$(cat l.csv)"
import csv, sys
rows = {int(r['step']): float(r['lr']) for r in csv.DictReader(open(sys.argv[1]))}
assert abs(rows[10] - 0.1) < 1e-12 and abs(rows[100] - 0.01) < 1e-12, rows
PY

# ---- errors and help
./chars train --text fox.txt --standardize > out 2> err; rc=$?
[ $rc = 2 ] && grep -q -- "--standardize is for rows of data, not for train --text" err && ok "train --text --standardize: exit 2" || bad "standardize: $rc" "$(cat err)"
./chars train --text missing.txt > out 2> err; rc=$?
[ $rc = 2 ] && grep -q "^missing.txt: error: cannot open" err && ok "a missing text: exit 2" || bad "missing: $rc" "$(cat err)"
printf 'short' > short.txt
./chars train --text short.txt > out 2> err; rc=$?
[ $rc = 1 ] && grep -q "shorter than one window of the model (T + 1 = 9 characters)" err && ok "a text shorter than a window: exit 1" || bad "short: $rc" "$(cat err)"
./chars --help > h && grep -q 'sample PARAMS \[--prompt TEXT\]' h && grep -q 'train --text FILE' h &&
  ./chars sample --help | grep -q -- '--temperature' && ./chars eval --help | grep -q -- '--text' &&
  ok "--help: train --text, eval --text, sample" || bad "help" "$(cat h)"
./chars info | grep -q '^  tok  *8  int(40)$' && ./chars info | grep -q 'steps 100' && ok "info: the token input and the steps" || bad "info" "$(./chars info)"

# ---- the glue gradc writes
if "$G" --main "$root/examples/seed.nn" -o seed_main.c 2> err; then
  grep -q 'static grt_real glue_loss(const grt_real \*params, const grt_real \*state,' seed_main.c &&
    grep -q '\.loss = glue_loss,' seed_main.c && grep -q 'return seed_loss(params, x, y, n, work);' seed_main.c &&
    ok "the glue adapts a stateless model to the descriptor's stateful form" || bad "glue adapters" "$(head -40 seed_main.c)"
  grep -q '\.flags = 0}' seed_main.c && grep -q '\.vocab = 0}' seed_main.c && grep -q '\.steps = 0,' seed_main.c &&
    ok "the glue fills flags, vocab and steps" || bad "glue fields" "$(grep -n 'flags\|vocab\|steps' seed_main.c)"
else bad "gradc --main" "$(cat err)"; fi
exit $fail
