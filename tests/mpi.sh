#!/usr/bin/env bash
# mpi.sh (`make test-mpi`): data-parallel training over MPI (docs/mpi.md).
# Executables built with `gradc --mpi` train the same model from the same
# seed with 1 process (the ordinary executable), and with 1, 2, 3 and 4 ranks
# under mpirun --oversubscribe, and must reach:
#   - 1 rank: the same bytes as the ordinary executable;
#   - 2, 3, 4 ranks: the same params up to summation order, every value within
#     |a - b| <= TOL * max(|a|, 1): TOL 1e-4 in float, 1e-10 in double
#     (the worst differences are printed);
# with --standardize, --validate and early stopping, chunks smaller than the
# batch, checkpoints resumed with another number of ranks; only rank 0
# prints and writes files; a bad row in one rank's shard, a file one rank
# cannot open, different files on the ranks and a rank killed with -9 end the
# whole job (within a timeout, never a hang) with a clear message, and the
# last checkpoint stays intact. Prints `ok ...`/`FAIL ...`, exits 1 on failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
G=${GRADC:-$ROOT/build/gradc}
TOL_FLOAT=1e-4
TOL_DOUBLE=1e-10
T=60 # seconds any one mpirun may take: a hang fails the test, it does not stall it

# ---- Open MPI (installed like the other build tools when we are root)
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing libopenmpi-dev openmpi-bin"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin; } >/dev/null ||
      { echo "FAIL mpi: cannot install Open MPI"; exit 1; }
  else
    echo "FAIL mpi: no mpicc/mpirun; run: sudo apt-get install -y libopenmpi-dev openmpi-bin"; exit 1
  fi
fi
make -s build/gradc build/libgradcrt_mpi.a build/libgradcrt_mpi_d.a >/dev/null || { echo "FAIL mpi: build"; exit 1; }
# mpirun refuses root without these; --oversubscribe lets 4 ranks share 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
MPIRUN=(timeout -k 5 $T mpirun --oversubscribe)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
ok() { echo "ok $*"; }
bad() { echo "FAIL $*"; fail=1; }

# ---- the models and the data
cat > cls.nn <<'EOF'
model cls
input  x[6]
target y: class(3)
param W1[12, 6] init he
param b1[12]
param W2[3, 12] init xavier
param b2[3]
h = tanh(W1 @ x + b1)
z = W2 @ h + b2
minimize cross_entropy(z, y)
output softmax(z)
train {
  optimizer adam(lr = 0.01)
  batch 16
  epochs 6
  shuffle on
  seed 7
}
EOF
sed 's/^model cls$/model cls\nprecision double/' cls.nn > clsd.nn
cat > reg.nn <<'EOF'
model reg
input  x[6]
target t[1]
param w[1, 6]
param b[1]
minimize mse(w @ x + b, t)
output w @ x + b
train {
  optimizer sgd(lr = 0.01)
  batch 8
  epochs 3
}
EOF
# 203 rows: not a multiple of 2, 3 or 4, so the shards differ in size
awk 'BEGIN { srand(3); print "a,b,c,d,e,f,y"; for (i = 0; i < 203; i++) { s = 0
       for (j = 0; j < 6; j++) { v = rand() * 4 - 2 + j; s += v * (j % 2 ? 1 : -1); printf "%.5f,", v }
       print (s < -1 ? 0 : s < 1 ? 1 : 2) } }' > data.csv
# a chunk of 8 under a batch of 16: each rank sums several chunks
for m in cls clsd reg; do
  $G $m.nn --batch 8 -o $m 2>err && $G --mpi $m.nn --batch 8 -o ${m}_mpi 2>>err ||
    { bad "gradc --mpi $m: $(head -3 err)"; exit 1; }
done

# worst |a - b| / max(|a|, 1) over two parameter files (read by EXE params)
worst() {
  paste <("$1" params "$2" | grep -v '\[' | tr -s ' ' '\n' | grep .) \
        <("$1" params "$3" | grep -v '\[' | tr -s ' ' '\n' | grep .) |
    awk 'NF != 2 { bad = 1 } { d = $1 - $2; d = d < 0 ? -d : d; a = $1 < 0 ? -$1 : $1; r = d / (a > 1 ? a : 1)
         if (r > w) w = r; n++ } END { if (bad || n == 0) print "nan"; else printf "%.3g\n", w }'
}
within() { awk -v w="$1" -v t="$2" 'BEGIN { exit !(w != "nan" && w + 0 <= t + 0) }'; }

# ---- 1, 2, 3, 4 ranks against one process
ARGS=(train data.csv --standardize --validate 0.2 --patience 3 --epochs 20 -q)
for m in cls clsd; do
  tol=$TOL_FLOAT; [ $m = clsd ] && tol=$TOL_DOUBLE
  ./$m "${ARGS[@]}" --save $m.serial > $m.serial.out 2>err || { bad "$m serial: $(cat err)"; continue; }
  for P in 1 2 3 4; do
    if ! "${MPIRUN[@]}" -np $P ./${m}_mpi "${ARGS[@]}" --save $m.$P > $m.$P.out 2>err; then
      bad "$m -np $P: exit $?: $(head -3 err)"; continue; fi
    w=$(worst ./$m $m.serial $m.$P)
    if [ $P = 1 ] && [ $m = cls ]; then
      cmp -s $m.serial $m.1 && ok "$m -np 1: the same bytes as one process" || bad "$m -np 1 differs from one process (worst $w)"
    elif within "$w" $tol; then
      ok "$m -np $P: params within $tol of one process (worst $w)"
    else
      bad "$m -np $P: params differ from one process by $w > $tol"
    fi
    n=$(grep -c '^train loss' $m.$P.out)
    [ "$n" = 1 ] && grep -q '^valid accuracy' $m.$P.out || bad "$m -np $P: stdout has $n 'train loss' lines: $(cat $m.$P.out)"
  done
done

# ---- fewer rows than ranks: a rank with an empty shard still takes part
head -4 data.csv > three.csv
./cls train three.csv --standardize --epochs 3 -q --save three.serial > /dev/null 2>&1
if "${MPIRUN[@]}" -np 4 ./cls_mpi train three.csv --standardize --epochs 3 -q --save three.4 > /dev/null 2>err; then
  w=$(worst ./cls three.serial three.4)
  within "$w" $TOL_FLOAT && ok "3 rows on 4 ranks (one shard empty): within $TOL_FLOAT (worst $w)" || bad "3 rows on 4 ranks: $w"
else bad "3 rows on 4 ranks: $(head -3 err)"; fi

# ---- IDX data (read whole, then cut to the shard)
if command -v python3 >/dev/null; then
  python3 - <<'EOF'
import random, struct
r = random.Random(5)
n = 45
open("img.idx", "wb").write(struct.pack(">IIII", 0x803, n, 8, 8) + bytes(r.randrange(256) for _ in range(n * 64)))
open("lab.idx", "wb").write(struct.pack(">II", 0x801, n) + bytes(r.randrange(10) for _ in range(n)))
EOF
  # without its dropout: masks are drawn per call, from a hash of the call's
  # examples, so they change with the split of a batch (docs/mpi.md)
  sed 's/dropout(h, 0.25)/h/' "$ROOT/examples/digits.nn" > digits.nn
  $G digits.nn --batch 8 -o digits && $G --mpi digits.nn --batch 8 -o digits_mpi || bad "gradc digits"
  ./digits train --images img.idx --labels lab.idx --epochs 3 --validate 0.2 -q --save dg.serial > /dev/null 2>&1
  if "${MPIRUN[@]}" -np 3 ./digits_mpi train --images img.idx --labels lab.idx --epochs 3 --validate 0.2 -q \
       --save dg.3 > /dev/null 2>err; then
    w=$(worst ./digits dg.serial dg.3)
    within "$w" $TOL_FLOAT && ok "IDX data on 3 ranks: within $TOL_FLOAT of one process (worst $w)" || bad "IDX on 3 ranks: $w"
  else bad "IDX on 3 ranks: $(head -3 err)"; fi
fi

# ---- a checkpoint of 2 ranks resumed by 4 ranks and by one process
./cls train data.csv --standardize --epochs 6 -q --save full.serial >/dev/null 2>&1
"${MPIRUN[@]}" -np 2 ./cls_mpi train data.csv --standardize --epochs 6 --stop-after 3 -q --save ck.params \
  --log ck.csv > /dev/null 2>err || bad "checkpoint -np 2: $(head -3 err)"
cp ck.params ck.copy
"${MPIRUN[@]}" -np 4 ./cls_mpi train data.csv --standardize --epochs 6 --resume ck.params -q --save res4.params \
  --log ck.csv > /dev/null 2>err || bad "resume -np 4: $(head -3 err)"
./cls train data.csv --standardize --epochs 6 --resume ck.copy -q --save res1.params > /dev/null 2>err ||
  bad "resume serial: $(head -3 err)"
for r in res4 res1; do
  w=$(worst ./cls full.serial $r.params)
  within "$w" $TOL_FLOAT && ok "resumed ($r) from a 2-rank checkpoint: within $TOL_FLOAT of 6 epochs in one process (worst $w)" ||
    bad "resumed ($r): $w from one process"
done
rows=$(grep -c '^[0-9]' ck.csv)
[ "$rows" = 6 ] && ok "--log written once, by rank 0 (6 rows over 2 runs)" || bad "--log has $rows rows, want 6: $(cat ck.csv)"
ls ck.params.tmp* >/dev/null 2>&1 && bad "temporary files left beside the checkpoint"

# ---- errors end the whole job, with a clear message, never a hang
awk 'NR == 12 { $0 = "0.1,0.2,abc,0.4,0.5,0.6,1" } { print }' data.csv > bad.csv # row 10: rank 10 % 4 = 2
cp ck.copy keep.params
"${MPIRUN[@]}" -np 4 ./cls_mpi train bad.csv --save keep.params -q > out 2> err; rc=$?
if [ $rc = 1 ] && grep -q "rank 2 of 4: bad.csv:12:9: error: 'abc' is not a number (field 3)" err; then
  ok "a bad row in rank 2's shard: exit 1, named with rank, file, line and column"
else bad "bad row: exit $rc: $(head -3 err)"; fi
cmp -s keep.params ck.copy && ok "the checkpoint is intact after the failed job" || bad "the checkpoint changed"

"${MPIRUN[@]}" -np 2 ./cls_mpi train data.csv -q : -np 1 ./cls_mpi train missing.csv -q > out 2> err; rc=$?
[ $rc = 2 ] && grep -q "rank 2 of 3: missing.csv: error: cannot open: No such file" err &&
  ok "a file one rank cannot open: exit 2 and its message" || bad "missing file on one rank: exit $rc: $(head -3 err)"

head -100 data.csv > short.csv
"${MPIRUN[@]}" -np 1 ./cls_mpi train data.csv -q : -np 1 ./cls_mpi train short.csv -q > out 2> err; rc=$?
[ $rc = 1 ] && grep -q "the ranks read different numbers of examples (99 to 203)" err &&
  ok "ranks that see different files: exit 1 and said once" || bad "different files: exit $rc: $(head -3 err)"

"${MPIRUN[@]}" -np 2 ./reg_mpi train data.csv --lr 1e12 --save div.params -q > out 2> err; rc=$?
n=$(grep -c "training diverged" err)
# (a diverged run leaves --save's file alone: the last good params go beside it)
[ $rc = 1 ] && [ "$n" = 1 ] && [ ! -e div.params ] && ./reg params div.params.diverged >/dev/null 2>&1 &&
  ok "a diverged run: exit 1, said once, last good params saved in div.params.diverged" || bad "divergence: exit $rc, $n messages: $(head -3 err)"

"${MPIRUN[@]}" -np 2 ./cls_mpi train data.csv --bogus > out 2> err; rc=$?
[ $rc = 2 ] && [ "$(grep -c "unknown option '--bogus'" err)" = 1 ] && ok "a bad command line: exit 2, said once" ||
  bad "bad option: exit $rc: $(head -3 err)"

"${MPIRUN[@]}" -np 2 ./cls_mpi eval cls.2 data.csv > out 2> err
[ "$(grep -c '^loss' out)" = 1 ] && ok "eval under mpirun runs on rank 0 alone" || bad "eval -np 2: $(cat out err)"

# kill -9 one rank of a long run: mpirun ends the others
awk 'NR == 1 { print; next } { for (k = 0; k < 50; k++) print }' data.csv > big.csv
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
"${MPIRUN[@]}" -np 2 ./cls_mpi train big.csv --epochs 1000000 --checkpoint 1 --save kill.params -q > out 2> err &
job=$!
for _ in $(seq 200); do [ -f kill.params ] && break; sleep 0.1; done
sleep 0.3
victim=
for c in $(descendants $job); do
  tr '\0' '\n' < /proc/$c/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$c
done
if [ -z "$victim" ] || ! [ -f kill.params ]; then
  bad "kill -9: no rank 1 process or no checkpoint"; kill -- $job 2>/dev/null; wait $job 2>/dev/null
else
  t0=$SECONDS
  kill -9 $victim
  wait $job; rc=$?
  if [ $rc != 0 ] && [ $rc != 124 ] && grep -q "exited on signal 9" err; then
    ok "kill -9 of rank 1: the job ended in $((SECONDS - t0)) s (exit $rc), mpirun names the rank"
  else bad "kill -9: exit $rc after $((SECONDS - t0)) s: $(head -5 err)"; fi
  ./cls params kill.params > /dev/null 2>&1 && ok "the last checkpoint of the killed job loads" || bad "checkpoint damaged by the kill"
fi

# ---- a text model (the hand-written bigram of tests/rt_fake_model.c): every
# rank draws its own windows, from a generator seeded by the seed and its rank
for i in $(seq 60); do echo "the quick brown fox jumps over the lazy dog"; done > fox.txt
if mpicc -O1 -std=c99 -I"$ROOT/runtime" -I"$ROOT/tests" -DTEXT_V=40 -DTEXT_T=8 "$ROOT/tests/e2e/text_fake.c" \
     "$ROOT/build/libgradcrt_mpi.a" -lz -lm -o text_mpi 2> err &&
   cc -O1 -std=c99 -I"$ROOT/runtime" -I"$ROOT/tests" -DTEXT_V=40 -DTEXT_T=8 "$ROOT/tests/e2e/text_fake.c" \
     "$ROOT/build/libgradcrt.a" -lz -lm -o text_one 2>> err; then
  ./text_one train --text fox.txt --steps 60 --validate 0.1 --save t0.params > out0 2> err0
  "${MPIRUN[@]}" -np 1 ./text_mpi train --text fox.txt --steps 60 --validate 0.1 --save t1.params > out1 2> err1
  cmp -s t0.params t1.params && ok "text, 1 rank: the bytes of the ordinary executable" || bad "text -np 1: $(tail -3 err1)"
  "${MPIRUN[@]}" -np 2 ./text_mpi train --text fox.txt --steps 60 --validate 0.1 --save t2.params > out2 2> err2
  rc=$?
  if [ $rc = 0 ] && [ "$(grep -c '^step ' err2)" = 10 ] && [ "$(grep -c '^train loss' out2)" = 1 ]; then
    ok "text, 2 ranks: trains, rank 0 alone prints ($(grep "^step 60" err2 | cut -c1-60))"
  else bad "text -np 2: exit $rc: $(tail -3 err2)"; fi
  ! cmp -s t1.params t2.params && ok "text, 2 ranks: rank 1 draws other windows (params differ from 1 rank's)" ||
    bad "text -np 2 gave the 1-rank params: the ranks drew the same windows"
  l2=$(./text_one eval t2.params --text fox.txt 2>/dev/null | sed -n 's/^loss //p')
  l1=$(./text_one eval t1.params --text fox.txt 2>/dev/null | sed -n 's/^loss //p')
  awk -v a="$l2" -v b="$l1" 'BEGIN { exit !(a != "" && a + 0 <= b + 0.05) }' &&
    ok "text, 2 ranks: twice the windows per step, a loss per character of $l2 (1 rank: $l1)" || bad "text -np 2 loss $l2, 1 rank $l1"
  "${MPIRUN[@]}" -np 2 ./text_mpi sample t2.params --prompt the --tokens 20 --temperature 0 > out 2> err
  [ "$(grep -c '^the' out)" = 1 ] && ok "sample under mpirun runs on rank 0 alone: $(head -1 out)" || bad "sample -np 2: $(cat out err)"
else bad "text model build: $(head -5 err)"; fi

exit $fail
