#!/usr/bin/env bash
# gradcheck.sh: a finite-difference gradient check, in double precision, of
# every op and every loss. Each case below is a small model with random
# shapes (seeded: GRADCHECK_SEED, default 1); gradc -c compiles it and
# tests/gradcheck/driver.c compares gc_loss_grad with central differences of
# gc_loss for n = 1, 7 and the compiled batch, printing the worst relative
# error. Usage: tests/gradcheck.sh [CASE...]
set -u
cd "$(dirname "$0")/.."
GRADC=${GRADC:-build/gradc}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# r LO HI: a number drawn from the seeded sequence. Its state is a file:
# r runs in a command substitution, a subshell, and bash reseeds $RANDOM in
# each, so shapes drawn from it changed from run to run whatever the seed.
echo "${GRADCHECK_SEED:-1}" > "$tmp/rng"
r() {
  local s; s=$(( ($(<"$tmp/rng") * 1103515245 + 12345) % 2147483648 ))
  echo "$s" > "$tmp/rng"
  echo $(( (s >> 8) % ($2 - $1 + 1) + $1 ))
}

check() { # check NAME NCLASS MODEL-BODY  (DRIVER, DEFS: see check_ref)
  local name=$1 ncls=$2 body=$3 driver=${DRIVER:-tests/gradcheck/driver.c} batch
  batch=$(r 8 12) # drawn first, so that ONLY does not change the shapes
  if [ -n "${ONLY:-}" ] && ! [[ " $ONLY " == *" $name "* ]]; then return; fi
  local d=$tmp/$name
  mkdir -p "$d"
  printf 'model gc\nprecision double\n%s\ntrain {\n  batch %d\n}\n' "$body" "$batch" > "$d/gc.nn"
  if ! $GRADC -c "$d/gc.nn" -o "$d" 2> "$d/err"; then
    echo "FAIL $name: gradc: $(head -5 "$d/err")"; fail=$((fail+1)); return
  fi
  if ! $CC -std=c99 -O1 -Wall -Wextra -pedantic -Werror -I"$d" -DNCLASS="$ncls" ${DEFS:-} \
        "$driver" "$d/gc.c" -lm -o "$d/check" 2> "$d/err"; then
    echo "FAIL $name: cc: $(head -5 "$d/err")"; fail=$((fail+1)); return
  fi
  local out; out=$("$d/check")
  if [ $? -eq 0 ]; then
    printf 'ok   %-22s %s\n' "$name" "$(tail -1 <<<"$out")"; pass=$((pass+1))
  else
    printf 'FAIL %-22s\n%s\n' "$name" "$out"; fail=$((fail+1))
    cp "$d/gc.nn" "$tmp/../gradcheck-$name.nn" 2>/dev/null
  fi
}

A=$(r 2 6) B=$(r 2 6) C=$(r 2 5)
io="input x[$A]
target y[$B]"
dense="param W[$B, $A] init normal(0, 0.5)
param b[$B] init uniform(-0.5, 0.5)
z = W @ x + b"
for f in relu sigmoid tanh exp softplus softsign gelu abs square silu; do
  check "$f" 0 "$io
$dense
h = $f(z)
minimize mse(h, y)"
done
check log 0 "$io
$dense
minimize mse(log(square(z) + 1), y)"
check sqrt 0 "$io
$dense
minimize mse(sqrt(square(z) + 0.5), y)"
check leaky_relu 0 "$io
$dense
minimize mse(leaky_relu(z, 0.1), y)"
check elu 0 "$io
$dense
minimize mse(elu(z, 0.7), y)"
check pow 0 "$io
$dense
minimize mse((square(z) + 1) ^ 1.5, y)"
check maximum_minimum 0 "$io
$dense
param V[$B, $A] init normal(0, 0.5)
u = V @ x
minimize mse(maximum(z, u) + minimum(z, 0.1) - minimum(u, z), y)"
check clamp 0 "$io
$dense
minimize mse(clamp(z, -0.3, 0.4) + clamp(2 * z, 0.1, 0.2), y)"
check arith 0 "$io
$dense
param c[$B] init uniform(1, 2)
h = (z * c - z / c + 2) / (square(c) + 1) - -z
minimize mse(h, y)"
check neg_sub 0 "$io
$dense
minimize mse(-z - 3 * z, y)"
check matmul_mm 0 "input x[$A, $C]
target y[$B, $C]
param W[$B, $A] init normal(0, 0.5)
param V[$C, $C] init normal(0, 0.5)
minimize mse(W @ x @ V, y)"
check matmul_vecmat 0 "input x[$A]
target y[$B]
param W[$A, $B] init normal(0, 0.5)
minimize mse(x @ W, y)"
check matmul_batched 0 "input x[$A]
input u[$B]
target y[1]
param W[$B, $A] init normal(0, 0.5)
minimize mse(u @ (W @ x), y)"
check transpose 0 "input x[$A, $B]
target y[$B, $B]
param W[$A, $B] init normal(0, 0.5)
minimize mse(transpose(x) @ W + W.T @ x, y)"
check param_only 0 "$io
$dense
param v[$B] init normal(0, 1)
minimize mse(z, y) + 0.01 * sum(square(v)) + 0.1 * sum(W * W)"
check reductions 0 "input x[$A, $C]
target y[$C]
param W[$A, $C] init normal(0, 1)
h = x * W
minimize mse(sum(h, axis=0) + mean(h, axis=0) + max(h, axis=0) + max(h), y)"
check softmax 0 "$io
$dense
minimize mse(softmax(z), y)"
check log_softmax 0 "$io
$dense
minimize mse(log_softmax(z), y)"
check reshape_flatten 0 "input x[$A, 2]
target y[$B]
param W[$B, $((A*2))] init normal(0, 0.5)
param V[2, $A] init normal(0, 0.5)
minimize mse(W @ flatten(x) + sum(reshape(V, [$((A*2))])), y)"
check concat 0 "input x[$A]
target y[$B]
param W[$B, $((A+B))] init normal(0, 0.5)
param v[$B] init normal(0, 1)
minimize mse(W @ concat(x, v, axis=0), y)"
check dense_sugar 0 "$io
h1 = dense(x, $C, tanh)
h2 = dense(h1, $B)
minimize mse(h2, y) + 0.01 * sum(square(h1.W))"
# blocks: def, called 3 times (each call its own params, h1.g, h1.m.W,
# ...), one block calling another, a local binding read from outside
check def_block 0 "$io
def inner(u) {
  param W[$A, $A] init normal(0, 0.5)
  return tanh(W @ u)
}
def block(v, s) {
  param g[$A] init uniform(0.5, 1.5) nodecay
  param c[$A] init normal(0, 0.5)
  m = inner(v * g)
  h = m * s + silu(v + c)
  return h
}
h1 = block(x, 1)
h2 = block(h1, 2)
h3 = block(h2, 0.5)
param P[$B, $A] init normal(0, 0.5)
minimize mse(P @ (h3 + h1.m), y)"
check axis_keepdims 0 "input x[$A, $C, 3]
target y[$C]
param W[$A, $C, 3] init normal(0, 1)
h = x * W
s1 = sum(h, axis=[0, 2])
s2 = mean(h, axis=[-1, 0], keepdims=true)
s3 = max(h, axis=[2, 0])
s4 = sum(mean(h, axis=-1, keepdims=true) * h, axis=0)
minimize mse(s1 + reshape(s2, [$C]) + s3 + sum(s4, axis=1) + max(h, axis=[0, 1, 2]), y)"
check softmax_axis 0 "input x[$A, $C]
target y[$A, $C]
param W[$A, $C] init normal(0, 1)
h = x * W
minimize mse(softmax(h, axis=0) + log_softmax(h, axis=-2) + softmax(h, axis=1), y)"
check softmax_axis3 0 "input x[$A, $C, 3]
target y[1]
param W[$A, $C, 3] init normal(0, 1)
h = x * W
minimize mse(sum(softmax(h, axis=1) * h) + sum(log_softmax(h, axis=0) * W), y)"
check l1 0 "$io
$dense
minimize l1(z, y)"
check huber 0 "$io
$dense
minimize huber(z * 3, y, 0.5)"
check bce 0 "$io
$dense
minimize bce(sigmoid(z), y)"
check bce_plain 0 "$io
$dense
p = 0.5 + 0.4 * tanh(z)
minimize bce(p, y)"
check bce_logits 0 "$io
$dense
minimize bce_logits(z, y)"
check cross_entropy $B "input x[$A]
target label: class($B)
$dense
minimize cross_entropy(z, label)"
check ce_found $B "input x[$A]
target label: class($B)
$dense
minimize -sum(onehot(label) * log(softmax(z)))"
check ce_soft 0 "$io
$dense
minimize cross_entropy(z, y)"
# the textbook forms the simplifier recognises (tests/golden: --emit=grad):
# the gradient stays exact for targets that are not one-hot or in {0, 1}
check ce_textbook 0 "$io
$dense
minimize -sum(y * log(softmax(z)))"
check bce_textbook 0 "$io
$dense
p = sigmoid(z)
minimize -mean(y * log(p) + (1 - y) * log(1 - p))"
check half_mse 0 "$io
$dense
minimize 0.5 * mse(z, y)"
check maximize 0 "$io
$dense
maximize -mse(tanh(z), y)"
check seed_mlp 0 "input x[3]
target y[1]
param W1[16, 3] init he
param b1[16]
param W2[16, 16] init he
param b2[16]
param W3[1, 16] init xavier
param b3[1]
a1 = relu(W1 @ x + b1)
a2 = relu(W2 @ a1 + b2)
yhat = sigmoid(W3 @ a2 + b3)
minimize bce(yhat, y)"

# the convolution family (compiler/conv.c): random image sizes, channels,
# kernels, strides and paddings. Activations are smooth where they can be:
# relu's kink is crossed by a central difference whenever some
# pre-activation lies within the step of 0, which random shapes make likely.
IC=$(r 1 3) IH=$(r 5 9) IW=$(r 4 8) OC=$(r 2 4)
# forward values against the definitions (tests/gradcheck/reference.c)
check_ref() { # check_ref NAME "-DOP=.. -DK=.." MODEL-BODY
  DRIVER=tests/gradcheck/reference.c DEFS="-DC=$IC -DH=$IH -DW=$IW -DO=$OC $2" check "$1" 0 "$3"
}
for pc in "same:3:1" "same:2:1" "same:4:2" "same:$(r 1 5):$(r 1 3)" "valid:3:1" "valid:$(r 1 4):$(r 2 3)" "1:3:1" "2:$(r 3 5):2"; do
  IFS=: read -r pad k st <<<"$pc"
  j=$((${j:-0}+1))
  check_ref "ref_conv2d_${j}_${pad}_k${k}_s${st}" "-DOP=1 -DK=$k -DS=$st -DPAD=$([ $pad = same ] && echo -1 || { [ $pad = valid ] && echo 0 || echo $pad; })" "input x[$IC, $IH, $IW]
target y[1]
c = conv2d(x, out=$OC, k=$k, stride=$st, pad=$pad)
output c
minimize mse(sum(c), y)"
done
# the last pixels, fewer than a vector, computed transposed (conv.c's
# emit_tail_t): 32 channels out (4 vectors of double at every width), 35
# pixels; at the driver's -O1 and at -march=native
for defs in "" "-O3 -march=native"; do
  DRIVER=tests/gradcheck/reference.c DEFS="-DC=2 -DH=5 -DW=7 -DO=32 -DOP=1 -DK=3 -DS=1 -DPAD=-1 $defs" \
    check "ref_conv2d_tail${defs:+_native}" 0 "input x[2, 5, 7]
target y[1]
c = conv2d(x, out=32, k=3, stride=1, pad=same)
output c
minimize mse(sum(c), y)"
done
for st in 2 3; do
  for op in maxpool2d:2 avgpool2d:3; do
    check_ref "ref_${op%:*}_$st" "-DOP=${op#*:} -DS=$st" "input x[$IC, $IH, $IW]
target y[1]
param s[1] init ones
p = ${op%:*}(x * s, $st)
output p
minimize mse(sum(p), y)"
  done
done
img="input x[$IC, $IH, $IW]
target y[$B]"
i=0
for pc in "same:3:1" "same:$(r 2 4):1" "same:$(r 2 4):2" "valid:$(r 2 3):1" "valid:3:2" "1:3:1" "same:1:1" "valid:1:$(r 1 2)"; do
  IFS=: read -r pad k st <<<"$pc"
  i=$((i+1))
  check "conv2d_${i}_${pad}_k${k}_s${st}" 0 "$img
c = conv2d(x, out=$OC, k=$k, stride=$st, pad=$pad, activation=tanh)
h = dense(flatten(c), $B)
minimize mse(h, y)"
done
check conv2d_hw 0 "input x[$IH, $IW]
target y[$B]
c = conv2d(x, $OC, 3)
h = dense(flatten(c), $B)
minimize mse(h, y)"
check conv2d_two 0 "$img
c1 = conv2d(x, out=$OC, k=3, activation=elu)
c2 = conv2d(c1, out=$(r 2 4), k=2, stride=2)
h = dense(flatten(c2), $B)
minimize mse(h, y) + 0.01 * sum(square(c1.W))"
# channel counts and image sizes that are not multiples of any vector width
# (register tiles of 8 rows with rows left over, a last partial vector),
# through each path of the emitted products: the vector extensions at the
# driver's -O1 (SSE2 or NEON width), at the build machine's widest
# (-march=native), and the plain loops of compilers without them
wide="input x[3, 9, 11]
target y[$B]
c1 = conv2d(x, out=19, k=3, activation=tanh)
c2 = conv2d(c1, out=9, k=2, stride=2, pad=valid)
p = avgpool2d(c2, 2)
h = dense(flatten(p), $B)
minimize mse(h, y) + 0.01 * sum(square(c1.W))"
check conv2d_wide 0 "$wide"
DEFS="-O3 -march=native" check conv2d_wide_native 0 "$wide"
DEFS="-DGRADC_NO_VEC" check conv2d_wide_plain 0 "$wide"
check maxpool2d 0 "$img
c = conv2d(x, out=$OC, k=3)
p = maxpool2d(c, 2)
h = dense(flatten(p), $B)
minimize mse(h, y)"
# relu then max-pool: the pool's adjoint applies relu's in its kernel and
# the convolution adds its bias and applies relu in its epilogue
# (compiler/emit_c.c fusion_of); odd sizes leave rows no window covers
check maxpool2d_relu 0 "input x[$IC, 7, 9]
target y[$B]
c = conv2d(x, out=$OC, k=3, activation=relu)
p = maxpool2d(c, 2)
h = dense(flatten(p), $B)
minimize mse(h, y)"
check maxpool2d_3_relu 0 "$img
c = conv2d(x, out=$OC, k=2, pad=valid)
p = maxpool2d(relu(c), 3)
h = dense(flatten(p), $B)
minimize mse(h, y)"
check maxpool2d_3 0 "$img
param s[$IC, $IH, $IW] init normal(0, 1)
p = maxpool2d(x * s, 3)
h = dense(flatten(p), $B)
minimize mse(h, y)"
check avgpool2d 0 "$img
c = conv2d(x, out=$OC, k=3)
p = avgpool2d(c, $(r 2 3))
h = dense(flatten(p), $B)
minimize mse(h, y)"
check avgpool2d_hw 0 "input x[$IH, $IW]
target y[$B]
param s[$IH, $IW] init normal(0, 1)
h = dense(flatten(avgpool2d(x * s, 2)), $B)
minimize mse(h, y)"
check dropout 0 "$io
$dense
h = dropout(tanh(z), 0.$(r 2 7))
minimize mse(h, y)"
check dropout_twice 0 "$io
h1 = dense(x, $C, relu)
h2 = dense(dropout(h1, 0.5), $B)
minimize mse(dropout(h2, 0.2), y)"
check cnn 10 "input x[1, 12, 12]
target label: class(10)
c1 = conv2d(x, out=4, k=3, activation=relu)
p1 = maxpool2d(c1, 2)
c2 = conv2d(p1, out=6, k=3, activation=softplus)
p2 = avgpool2d(c2, 2)
h = dense(dropout(flatten(p2), 0.25), 16, relu)
z = dense(h, 10)
minimize cross_entropy(z, label)"

# tokens and sequences: int ids (the driver draws them with -DVOCAB),
# gathers, class targets per position, slices, permutations, batched
# products, causal masks; shapes drawn after every case above
V=$(r 3 9) T=$(r 2 6) D=$(r 2 5) H=$(r 2 3)
ids="input tok: int($V)[$T]"
DEFS="-DVOCAB=$V" check gather 0 "$ids
target y[$T, $D]
param E[$V, $D] init normal(0, 1)
minimize mse(tanh(E[tok]) * 2, y)"
# ids that are NaN, negative or past V read zero rows and add nothing
DEFS="-DVOCAB=$V -DBADIDS" check gather_bad_ids 0 "$ids
target y[$T, $D]
param E[$V, $D] init normal(0, 1)
minimize mse(E[tok] + 0.5 * square(E[tok]), y)"
DEFS="-DVOCAB=$V" check gather_slice_ids 0 "$ids
target y[$((T > 1 ? T - 1 : 1)), $D]
param E[$V, $D] init normal(0, 1)
minimize mse(E[tok[$((T > 1 ? 1 : 0)):]], y)"
DEFS="-DVOCAB=$V" check ce_positions $V "$ids
target next: class($V)[$T]
param E[$V, $D] init normal(0, 1)
param W[$D, $V] init normal(0, 1)
minimize cross_entropy(tanh(E[tok]) @ W, next)"
DEFS="-DVOCAB=$V" check ce_onehot_positions $V "$ids
target next: class($V)[$T]
param E[$V, $V] init normal(0, 1)
z = tanh(E[tok]) * 3
minimize -sum(onehot(next) * log_softmax(z)) / $T + 0.1 * sum(onehot(next) * z)"
DEFS="-DVOCAB=$V" check ce_positions_2d $V "input tok: int($V)[2, $T]
target next: class($V)[2, $T]
param E[$V, $V] init normal(0, 1)
minimize cross_entropy(E[tok], next)"
check slices 0 "input x[$A, $C]
target y[$C]
param W[$A, $C] init normal(0, 1)
h = x * W
minimize mse(h[0] + h[-1] * 2 + h[$((A-1)):][0] + h[::2][0] + sum(h[:, 1:], axis=0)[0] + h[..., 0][0] * h[1, -1], y)"
# adjacent slices: their adjoints added become one concat (the whole axis)
# or the concat's view (part of it)
check slices_adjacent 0 "input x[$A, 6]
target y[$A, 2]
param W[6, 6] init normal(0, 1)
h = x @ W
minimize mse(h[:, 0:2] * h[:, 2:4] + tanh(h[:, 4:6]) + h[:, 1:3] + sigmoid(h[:, 3:5]), y)"
check slices_3d 0 "input x[3, $A, $C]
target y[$A]
param W[3, $A, $C] init normal(0, 1)
h = x * W
minimize mse(sum(h[1:, :, ::2], axis=0)[:, 0] + h[..., -1][2] + h[0, :, $((C-1))], y)"
check transpose_perm 0 "input x[$H, $T, $D]
target y[$D, $H, $T]
param W[$H, $T, $D] init normal(0, 1)
h = tanh(x * W)
minimize mse(transpose(h, [2, 0, 1]) + transpose(transpose(h, [1, 0, 2]), [2, 1, 0]), y)"
check matmul_heads 0 "input x[$H, $T, $D]
target y[$H, $T, $T]
param Wq[$D, $D] init normal(0, 1)
param K[$H, $D, $T] init normal(0, 1)
q = x @ Wq
minimize mse(q @ transpose(q, [0, 2, 1]) + q @ K + transpose(K, [0, 2, 1]) @ transpose(x, [0, 2, 1]), y)"
check matmul_broadcast 0 "input x[$T, $D]
target y[$H, $T, $D]
param A[$H, $T, $T] init normal(0, 1)
param B[$H, 1, $D, $D] init normal(0, 1)
h = A @ x
minimize mse(h + sum(h @ B, axis=1) + tanh(x) @ B[:, 0], y)"
check matmul_vec3 0 "input x[$H, $T, $D]
target y[$H, $T]
param v[$D] init normal(0, 1)
param u[$T] init normal(0, 1)
minimize mse(x @ v + reshape(u @ x @ v, [$H, 1]), y)"
check causal_softmax 0 "input x[$H, $T, $D]
target y[$H, $T, $T]
param W[$D, $D] init normal(0, 1)
q = x @ W
s = causal(q @ transpose(x, [0, 2, 1]))
minimize mse(softmax(s) + 0.1 * exp(causal(tanh(q @ transpose(q, [0, 2, 1])))), y)"
DEFS="-DVOCAB=$V" check gpt_tiny $V "const V = $V
const T = $T
const D = 4
input tok: int(V)[T]
target next: class(V)[T]
param wte[V, D] init normal(0, 0.5)
param wpe[T, D] init normal(0, 0.5)
param Wqkv[D, 3 * D] init normal(0, 0.5)
param Wo[D, D] init normal(0, 0.5)
x = wte[tok] + wpe
qkv = x @ Wqkv
q = transpose(reshape(qkv[:, 0:D], [T, 2, 2]), [1, 0, 2])
k = transpose(reshape(qkv[:, D:2 * D], [T, 2, 2]), [1, 0, 2])
v = transpose(reshape(qkv[:, 2 * D:3 * D], [T, 2, 2]), [1, 0, 2])
att = softmax(causal(q @ transpose(k, [0, 2, 1]) / sqrt(2)))
y = reshape(transpose(att @ v, [1, 0, 2]), [T, D])
a = x + y @ Wo
logits = a @ transpose(wte)
minimize cross_entropy(logits, next)
output logits"

# normalization (compiler/norm.c): layer_norm per row, rows of 8 lanes and
# a tail; batch_norm in training mode (the driver's n = 1, 2, 7 and the
# batch), per feature and per channel over the pixels
check layer_norm 0 "input x[$A, 19]
target y[$A, 19]
param W[19, 19] init normal(0, 0.5)
param g[19] init uniform(0.5, 1.5)
param c[19] init uniform(-0.5, 0.5)
minimize mse(tanh(layer_norm(x @ W) * g + c), y)"
check layer_norm_vec 0 "$io
$dense
minimize mse(layer_norm(z) * z, y)"
check layer_norm_axes 0 "input x[$A, $C, 3]
target y[$A, $C, 3]
param s[$C, 3] init normal(1, 0.5)
minimize mse(layer_norm(x * s, axis=[-2, -1], eps=1e-3) * s, y)"
check batch_norm 0 "$io
$dense
param g[$B] init uniform(0.5, 1.5)
param c[$B] init uniform(-0.5, 0.5)
h = batch_norm(z) * g + c
minimize mse(tanh(h), y)"
check batch_norm_chw 0 "$img
c = conv2d(x, out=$OC, k=3)
h = batch_norm(c, eps=1e-3)
z = dense(flatten(tanh(h)), $B)
minimize mse(z, y)"
check batch_norm_dropout 0 "$io
$dense
h = dropout(tanh(batch_norm(z)), 0.3)
minimize mse(h, y)"
# the example of batch_norm, as written but its model line and train block.
# At n = 2 each hidden feature normalized over two examples is a smoothed
# sign of their difference (its scale sqrt(eps) = 0.003), so the loss is
# curved enough that central differences agree only to about 1e-5 at the
# usual step and to rounding noise of about 1e-8 below it (they converge to
# the gradient as the step shrinks): a step of 1e-6 and a tolerance of 1e-4
DEFS="-DSTEP=1e-6 -DTOL=1e-4" check digits_bn 10 "$(sed '/^model /d; /^train {/,/^}/d' examples/digits_bn.nn)"

echo "gradcheck: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
