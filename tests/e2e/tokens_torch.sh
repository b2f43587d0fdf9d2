#!/usr/bin/env bash
# tokens_torch.sh: models of tokens and sequences (int ids, gathers, class
# targets per position, slices, permutations, batched products, causal
# masks) against PyTorch autograd, in double: each model is compiled, its
# loss_grad and predict run on random params and ids, and the loss, every
# gradient and the output compared with the same model written in torch.
# Out-of-range ids (NaN, negative, >= V) must read zero rows, as the
# torch model does with a masked embedding. Without torch it only checks
# that the models build and run.
. "$(dirname "$0")/lib.bash"
cat > "$tmp/driver.c" <<'EOF'
/* reads n, the params, n inputs and n targets; prints the loss, the gradient and the output */
#include "tk.h"
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    static double p[TK_PARAM_COUNT], x[TK_MAX_BATCH * TK_INPUT_SIZE], y[TK_MAX_BATCH * TK_TARGET_SIZE];
    static double g[TK_PARAM_COUNT], o[TK_MAX_BATCH * TK_OUTPUT_SIZE];
    static unsigned char w[TK_WORKSPACE_BYTES + 64];
    size_t n, i;
    char s[64];
    if (scanf("%zu", &n) != 1 || n < 1 || n > TK_MAX_BATCH) return 2;
    for (i = 0; i < TK_PARAM_COUNT; i++) if (scanf("%lf", &p[i]) != 1) return 2;
    for (i = 0; i < n * TK_INPUT_SIZE; i++) if (scanf("%63s", s) != 1) return 2; else x[i] = strtod(s, NULL);
    for (i = 0; i < n * TK_TARGET_SIZE; i++) if (scanf("%lf", &y[i]) != 1) return 2;
    printf("%.17g\n", tk_loss_grad(p, x, y, n, g, w));
    for (i = 0; i < TK_PARAM_COUNT; i++) printf("%.17g\n", g[i]);
    tk_predict(p, x, n, o, w);
    for (i = 0; i < n * TK_OUTPUT_SIZE; i++) printf("%.17g\n", o[i]);
    return 0;
}
EOF
/usr/bin/python3 - "$G" "$tmp" <<'EOF'
import math, random, subprocess, sys
G, tmp = sys.argv[1], sys.argv[2]
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None
    print("note: torch is not installed; the models are only built and run")
V, T, D, H = 11, 6, 8, 2
gpt = f"""const V = {V}
const T = {T}
const D = {D}
const H = {H}
input tok: int(V)[T]
target next: class(V)[T]
param wte[V, D] init normal(0, 0.5)
param wpe[T, D] init normal(0, 0.5)
param Wqkv[D, 3 * D] init normal(0, 0.5)
param Wo[D, D] init normal(0, 0.5)
x = wte[tok] + wpe
qkv = x @ Wqkv
q = transpose(reshape(qkv[:, 0:D], [T, H, D / H]), [1, 0, 2])
k = transpose(reshape(qkv[:, D:2 * D], [T, H, D / H]), [1, 0, 2])
v = transpose(reshape(qkv[:, 2 * D:3 * D], [T, H, D / H]), [1, 0, 2])
att = softmax(causal(q @ transpose(k, [0, 2, 1]) / sqrt(D / H)))
y = reshape(transpose(att @ v, [1, 0, 2]), [T, D])
a = x + y @ Wo
logits = a @ transpose(wte)
minimize cross_entropy(logits, next)
output logits"""

def emb(w, ids):  # rows of w, zeros for ids outside 0..V-1 (NaN too)
    ok = (ids >= 0) & (ids < w.shape[0])
    k = torch.where(ok, ids, torch.zeros_like(ids)).long()
    return w[k] * ok.unsqueeze(-1).to(w.dtype)

def gpt_ref(P, x, y):
    wte, wpe, Wqkv, Wo = P
    n = x.shape[0]
    h = emb(wte, x) + wpe
    qkv = h @ Wqkv
    hd = D // H
    q, k, v = (qkv[:, :, i * D:(i + 1) * D].reshape(n, T, H, hd).transpose(1, 2) for i in range(3))
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    att = torch.softmax(s.masked_fill(mask, float("-inf")), -1)
    yy = (att @ v).transpose(1, 2).reshape(n, T, D)
    logits = (h + yy @ Wo) @ wte.T
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1).long())
    return loss, logits

views = """input x[3, 4, 5]
target y[5, 2]
param W[3, 4, 5] init normal(0, 1)
param A[2, 4, 4] init normal(0, 1)
h = tanh(x * W)
u = transpose(h, [2, 0, 1])
z = A @ h[1:, :, ::2] + reshape(h[..., -1][0], [4, 1])
minimize mse(u[:, 0, 0:2] + sum(z[1, 3, :]) + h[-1, 2, 1:5:2], y)
output transpose(z, [2, 0, 1])"""

def views_ref(P, x, y):
    W, A = P
    h = torch.tanh(x * W)
    u = h.permute(0, 3, 1, 2)
    z = A @ h[:, 1:, :, ::2] + h[..., -1][:, 0].view(-1, 1, 4, 1)
    out = u[:, :, 0, 0:2] + z[:, 1, 3, :].sum(-1).view(-1, 1, 1) + h[:, -1, 2, 1:5:2].unsqueeze(1)
    return ((out - y.view(-1, 5, 2)) ** 2).mean(), z.permute(0, 3, 1, 2)

cases = [  # name, body, param shapes, inputs per example, targets, reference, bad ids
    ("gpt", gpt, [(V, D), (T, D), (D, 3 * D), (D, D)], ("ids", T), ("cls", T, V), gpt_ref, False),
    ("gpt_bad_ids", gpt, [(V, D), (T, D), (D, 3 * D), (D, D)], ("ids", T), ("cls", T, V), gpt_ref, True),
    ("views", views, [(3, 4, 5), (2, 4, 4)], ("real", 60), ("real", 10), views_ref, False),
]
rng = random.Random(7)
fails = 0
for name, body, shapes, xin, yin, ref, badids in cases:
    d = f"{tmp}/{name}"
    subprocess.run(["mkdir", "-p", d], check=True)
    open(f"{d}/tk.nn", "w").write(f"model tk\nprecision double\n{body}\ntrain {{\n  batch 5\n}}\n")
    r = subprocess.run([G, "-c", f"{d}/tk.nn", "-o", d], capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: gradc: {r.stderr.strip()}"); fails += 1; continue
    r = subprocess.run(["cc", "-std=c99", "-O1", f"-I{d}", f"{tmp}/driver.c", f"{d}/tk.c", "-lm",
                        "-o", f"{d}/run"], capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: cc: {r.stderr.strip()[:400]}"); fails += 1; continue
    n = 4
    sizes = [math.prod(s) for s in shapes]
    p = [rng.gauss(0, 0.5) for _ in range(sum(sizes))]
    if xin[0] == "ids":
        x = [float(rng.randrange(V)) for _ in range(n * xin[1])]
        if badids:
            for i, b in zip(range(0, len(x), 3), [float("nan"), -1.0, float(V), 1e30, -0.5, V - 0.5]):
                x[i] = b
    else:
        x = [rng.uniform(-1, 1) for _ in range(n * xin[1])]
    y = ([float(rng.randrange(yin[2])) for _ in range(n * yin[1])] if yin[0] == "cls"
         else [rng.uniform(0, 1) for _ in range(n * yin[1])])
    data = " ".join(repr(v) for v in [n] + p + x + y)
    out = subprocess.run([f"{d}/run"], input=data, capture_output=True, text=True).stdout.split()
    got = [float(v) for v in out]
    if len(got) < 1 + len(p) or any(math.isnan(v) for v in got):
        print(f"FAIL {name}: the driver printed {len(got)} numbers, or a NaN"); fails += 1; continue
    if torch is None:
        print(f"ok   {name}: built and ran"); continue
    P, o = [], 0
    for s, k in zip(shapes, sizes):
        P.append(torch.tensor(p[o:o + k], dtype=torch.float64).view(*s).requires_grad_(True)); o += k
    xt = torch.tensor(x, dtype=torch.float64).view(n, *( [T] if xin[0] == "ids" else [3, 4, 5]))
    yt = torch.tensor(y, dtype=torch.float64).view(n, -1)
    loss, outp = ref(P, xt, yt)
    loss.backward()
    want = [loss.item()] + [v for t in P for v in t.grad.reshape(-1).tolist()] + outp.reshape(-1).tolist()
    worst = max(abs(a - b) / max(1e-3, abs(a) + abs(b)) for a, b in zip(got, want)) if len(got) == len(want) else float("inf")
    if worst > 1e-10:
        print(f"FAIL {name}: worst relative difference from PyTorch {worst:.3g} ({len(got)} values, want {len(want)})"); fails += 1
    else:
        print(f"ok   {name}: loss, {len(p)} gradients and the output = PyTorch's (worst relative difference {worst:.2g})")
sys.exit(1 if fails else 0)
EOF
