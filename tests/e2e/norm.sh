#!/usr/bin/env bash
# norm.sh: layer_norm and batch_norm against PyTorch, in double. Each model
# is compiled with gradc -c into a shared library that Python calls through
# ctypes:
#   - layer_norm (rows of 19 and a GPT's [64, 128] at batch 12, and over the
#     last two axes): predict against torch.nn.functional.layer_norm, and
#     loss_grad's loss and gradient against autograd's
#   - batch_norm over [F] and [C, H, W]: three steps of loss_grad on new
#     batches against BatchNorm1d/2d in training mode (loss, gradient and
#     the running mean and variance it updates), then loss and predict,
#     which use the running statistics, against the same module in eval mode
#   - examples/digits_bn.nn trained on the digits and scored with predict
# Skipped (and said so) where torch is not installed.
. "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
if ! $PY -c "import torch, numpy" 2>/dev/null; then
  echo "skip: norm.sh needs torch and numpy for /usr/bin/python3"
  finish norm " (skipped)"
  exit 0
fi
CC=${CC:-cc}
# the shared objects are loaded into Python, which a sanitizer's runtime
# cannot join: under tests/sanitize.sh they are built without it (the
# sanitized runs of this code are gradcheck's and strict.sh's)
case "$CC" in *-fsanitize*) CC=${CC%% *} ;; esac

build() { # build NAME BATCH MODEL-BODY: $tmp/NAME.so
  printf 'model %s\nprecision double\n%s\ntrain {\n  batch %d\n}\n' "$1" "$3" "$2" > "$tmp/$1.nn"
  "$G" -c "$tmp/$1.nn" -o "$tmp" 2> "$tmp/err" &&
    $CC -std=c99 -O2 -shared -fPIC "$tmp/$1.c" -o "$tmp/$1.so" -lm 2>> "$tmp/err"
}

ln_body() { # T D AXES
  local axis=""; [ "$3" = 2 ] && axis=", axis=[-2, -1]"
  echo "input x[$1, $2]
target y[$1, $2]
param W[$2, $2] init normal(0, 0.3)
param g[$2] init normal(1, 0.2)
param c[$2] init normal(0, 0.2)
h = layer_norm(x @ W$axis) * g + c
minimize mse(h, y)
output h"
}

for cfg in "ln_small:5:3:19:1" "ln_gpt:12:64:128:1" "ln_axes:4:3:7:2"; do
  IFS=: read -r name batch T D axes <<<"$cfg"
  if ! build "$name" "$batch" "$(ln_body "$T" "$D" "$axes")"; then bad "$name" "$(head -3 "$tmp/err")"; continue; fi
  if out=$($PY - "$tmp/$name.so" "$name" "$batch" "$T" "$D" "$axes" 2>&1 <<'EOF'
import ctypes, sys
import numpy as np, torch
lib = ctypes.CDLL(sys.argv[1]); m = sys.argv[2]
B, T, D, axes = (int(a) for a in sys.argv[3:])
P = lambda a: a.ctypes.data_as(ctypes.c_void_p)
rng = np.random.default_rng(7)
W = rng.normal(0, 0.3, (D, D)); g = rng.normal(1, 0.2, D); c = rng.normal(0, 0.2, D)
params = np.concatenate([W.ravel(), g, c])
x = rng.normal(3, 2, (B, T, D)); y = rng.normal(0, 1, (B, T, D))
work = np.zeros(1 << 24, dtype=np.uint8)
out = np.zeros((B, T, D)); grad = np.zeros_like(params)
getattr(lib, m + "_predict")(P(params), P(x), ctypes.c_size_t(B), P(out), P(work))
f = getattr(lib, m + "_loss_grad"); f.restype = ctypes.c_double
L = f(P(params), P(x), P(y), ctypes.c_size_t(B), P(grad), P(work))
tW, tg, tc = (torch.tensor(a, requires_grad=True) for a in (W, g, c))
z = torch.tensor(x) @ tW
shape = (D,) if axes == 1 else (T, D)
ln = torch.nn.functional.layer_norm(z, shape, eps=1e-5)
h = ln * tg + tc
tL = ((h - torch.tensor(y)) ** 2).mean()
tL.backward()
tgrad = np.concatenate([tW.grad.numpy().ravel(), tg.grad.numpy(), tc.grad.numpy()])
e1 = np.abs(out - h.detach().numpy()).max()
e2 = abs(L - tL.item())
e3 = np.abs(grad - tgrad).max() / max(1e-12, np.abs(tgrad).max())
print("output %.2e, loss %.2e, gradient %.2e (relative)" % (e1, e2, e3))
sys.exit(0 if e1 < 1e-10 and e2 < 1e-12 and e3 < 1e-10 else 1)
EOF
  ); then ok "$name against torch: $out"; else bad "$name against torch" "$out"; fi
done

bn_body() { # F-or-CHW
  echo "input x[$1]
target y[$1]
param s[$1] init normal(1, 0.3)
h = batch_norm(x * s)
minimize mse(h, y) + 0.1 * sum(square(h))
output h"
}
for cfg in "bn_f:8:5:1d" "bn_chw:6:3,4,5:2d" "bn_one:1:4:1d"; do
  IFS=: read -r name batch shape kind <<<"$cfg"
  if ! build "$name" "$batch" "$(bn_body "${shape//,/, }")"; then bad "$name" "$(head -3 "$tmp/err")"; continue; fi
  if out=$($PY - "$tmp/$name.so" "$name" "$batch" "$shape" 2>&1 <<'EOF'
import ctypes, sys
import numpy as np, torch
lib = ctypes.CDLL(sys.argv[1]); m = sys.argv[2]
B = int(sys.argv[3]); shape = tuple(int(a) for a in sys.argv[4].split(","))
P = lambda a: a.ctypes.data_as(ctypes.c_void_p)
fn = lambda k, r=ctypes.c_double: (lambda f: (setattr(f, "restype", r), f)[1])(getattr(lib, m + "_" + k))
rng = np.random.default_rng(3)
s = rng.normal(1, 0.3, shape); params = s.ravel().copy()
nstate = 2 * shape[0]
state = np.zeros(nstate); fn("init_state", None)(P(state))
work = np.zeros(1 << 22, dtype=np.uint8)
bn = (torch.nn.BatchNorm1d if len(shape) == 1 else torch.nn.BatchNorm2d)(shape[0], affine=False, momentum=0.1, eps=1e-5).double()
bn.train()
ts = torch.tensor(s, requires_grad=True)
def tloss(h, y):
    return ((h - y) ** 2).mean(dim=tuple(range(1, h.dim()))).mean() + 0.1 * (h ** 2).sum(dim=tuple(range(1, h.dim()))).mean()
worst = [0, 0, 0]
ok1 = True
for step in range(3):
    x = rng.normal(2, 3, (B,) + shape); y = rng.normal(0, 1, (B,) + shape)
    grad = np.zeros_like(params)
    L = fn("loss_grad")(P(params), P(state), P(x), P(y), ctypes.c_size_t(B), P(grad), P(work))
    if B == 1 and len(shape) == 1:
        # one value per channel: PyTorch raises; gradc's output is 0, its
        # gradient through the statistics 0, the running variance unchanged
        h = torch.zeros((B,) + shape, dtype=torch.double)
        mean = torch.tensor(x * s).mean(0)
        with torch.no_grad():
            bn.running_mean.mul_(0.9).add_(0.1 * mean)
        ts.grad = torch.zeros_like(ts)
        tL = tloss(h, torch.tensor(y))
    else:
        ts.grad = None
        h = bn(torch.tensor(x) * ts)
        tL = tloss(h, torch.tensor(y))
        tL.backward()
    worst[0] = max(worst[0], abs(L - tL.item()))
    worst[1] = max(worst[1], np.abs(grad - ts.grad.numpy().ravel()).max())
    worst[2] = max(worst[2], np.abs(state - np.concatenate([bn.running_mean.numpy(), bn.running_var.numpy()])).max())
bn.eval()
x = rng.normal(2, 3, (B,) + shape); y = rng.normal(0, 1, (B,) + shape)
out = np.zeros((B,) + shape)
fn("predict", None)(P(params), P(state), P(x), ctypes.c_size_t(B), P(out), P(work))
Le = fn("loss")(P(params), P(state), P(x), P(y), ctypes.c_size_t(B), P(work))
with torch.no_grad():
    he = bn(torch.tensor(x * s))
    tLe = tloss(he, torch.tensor(y)).item()
e_out = np.abs(out - he.numpy()).max(); e_loss = abs(Le - tLe)
print("training: loss %.1e, gradient %.1e, running statistics %.1e; eval: output %.1e, loss %.1e"
      % (worst[0], worst[1], worst[2], e_out, e_loss))
sys.exit(0 if max(worst) < 1e-10 and e_out < 1e-10 and e_loss < 1e-10 else 1)
EOF
  ); then ok "$name against torch: $out"; else bad "$name against torch" "$out"; fi
done

# examples/digits_bn.nn trained end to end through its generated pair (the
# executable's runtime does not take state yet): Adam as its train block
# says, batches of 32 for 30 epochs, loss_grad updating the running
# statistics; then predict, with the running statistics, on the 359 test
# images: accuracy at least 0.95
if ! "$G" -c examples/digits_bn.nn -o "$tmp" 2> "$tmp/err" ||
   ! $CC -std=c99 -O2 -shared -fPIC "$tmp/digits_bn.c" -o "$tmp/digits_bn.so" -lm 2>> "$tmp/err"; then
  bad "digits_bn build" "$(head -3 "$tmp/err")"
elif out=$($PY - "$tmp/digits_bn.so" examples/data 2>&1 <<'EOF'
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1]); D = sys.argv[2]
P = lambda a: a.ctypes.data_as(ctypes.c_void_p)
f32 = np.float32
def load(f):
    a = np.loadtxt(f, delimiter=",", skiprows=1, dtype=f32)
    return np.ascontiguousarray(a[:, :-1]), np.ascontiguousarray(a[:, -1])
xt, yt = load(D + "/digits_train.csv"); xs, ys = load(D + "/digits_test.csv")
NP = 13706; NS = 224
params = np.zeros(NP, f32); state = np.zeros(NS, f32); grad = np.zeros(NP, f32)
lib.digits_bn_init(P(params), ctypes.c_uint64(1)); lib.digits_bn_init_state(P(state))
lib.digits_bn_loss_grad.restype = ctypes.c_float
work = np.zeros(1 << 24, np.uint8)
m = np.zeros(NP, f32); v = np.zeros(NP, f32); t = 0
rng = np.random.default_rng(1)
for epoch in range(30):
    order = rng.permutation(len(xt)); tot = 0
    for i in range(0, len(xt), 32):
        k = order[i:i + 32]; xb = np.ascontiguousarray(xt[k]); yb = np.ascontiguousarray(yt[k])
        tot += lib.digits_bn_loss_grad(P(params), P(state), P(xb), P(yb), ctypes.c_size_t(len(k)), P(grad), P(work)) * len(k)
        t += 1
        m = 0.9 * m + 0.1 * grad; v = 0.999 * v + 0.001 * grad * grad
        params -= (0.003 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)).astype(f32)
out = np.zeros((32, 10), f32); right = 0
for i in range(0, len(xs), 32):
    xb = np.ascontiguousarray(xs[i:i + 32]); n = len(xb)
    lib.digits_bn_predict(P(params), P(state), P(xb), ctypes.c_size_t(n), P(out), P(work))
    right += int((out[:n].argmax(1) == ys[i:i + 32]).sum())
acc = right / len(xs)
print("last epoch's training loss %.4f, test accuracy %.3f (%d/%d) with the running statistics"
      % (tot / len(xt), acc, right, len(xs)))
sys.exit(0 if acc >= 0.95 else 1)
EOF
); then ok "digits_bn trained: $out"; else bad "digits_bn trained" "$out"; fi
finish norm
