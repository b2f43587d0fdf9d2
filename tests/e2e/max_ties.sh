#!/usr/bin/env bash
# max_ties.sh: the gradient of max() where several elements hold the
# maximum. PyTorch splits it evenly among them (torch.max(x) and
# torch.amax(x, dim), the reduction max() and max(x, axis=k) are), and so
# must gradc: each model below is compiled in double, its loss_grad run on
# chosen params and inputs full of ties, and the gradient compared with the
# one written here (and with PyTorch's when torch is installed). A finite
# difference cannot check this: max is not differentiable at a tie. (The
# max-pool is another matter: maxpool2d's adjoint goes to the first maximum
# of each window, as torch's max_pool2d does.)
. "$(dirname "$0")/lib.bash"
cat > "$tmp/driver.c" <<'EOF'
/* reads n, the params, n inputs and n targets; prints the loss and the gradient */
#include "mt.h"
#include <stdio.h>
int main(void)
{
    static double p[MT_PARAM_COUNT], x[MT_MAX_BATCH * MT_INPUT_SIZE], y[MT_MAX_BATCH * MT_TARGET_SIZE];
    static double g[MT_PARAM_COUNT];
    static unsigned char w[MT_WORKSPACE_BYTES + 64];
    size_t n, i;
    if (scanf("%zu", &n) != 1 || n < 1 || n > MT_MAX_BATCH) return 2;
    for (i = 0; i < MT_PARAM_COUNT; i++) if (scanf("%lf", &p[i]) != 1) return 2;
    for (i = 0; i < n * MT_INPUT_SIZE; i++) if (scanf("%lf", &x[i]) != 1) return 2;
    for (i = 0; i < n * MT_TARGET_SIZE; i++) if (scanf("%lf", &y[i]) != 1) return 2;
    printf("%.17g\n", mt_loss_grad(p, x, y, n, g, w));
    for (i = 0; i < MT_PARAM_COUNT; i++) printf("%.17g\n", g[i]);
    return 0;
}
EOF
# case: model body; n params inputs targets; the expected loss and gradient;
# the same model in PyTorch (w: the params as one tensor, x and y batched)
/usr/bin/python3 - "$G" "$tmp" <<'EOF'
import subprocess, sys
G, tmp = sys.argv[1], sys.argv[2]
try:
    import torch
except ImportError:
    torch = None
    print("note: torch is not installed; the gradients are checked against the values written here only")
cases = [
    # the whole gradient to both of two equal elements was [8, 8, 0]
    ("two_tied", "input x[1]\ntarget y[1]\nparam w[3]\nminimize mse(max(w * x), y)",
     1, [1, 1, .5], [2], [0], [4, 4, 0],
     lambda w, x, y: (torch.amax(w * x, dim=-1, keepdim=True) - y).pow(2).mean()),
    ("three_tied", "input x[1]\ntarget y[1]\nparam w[3]\nminimize mse(max(w * x), y)",
     1, [1, 1, 1], [2], [0], [8 / 3, 8 / 3, 8 / 3],
     lambda w, x, y: (torch.amax(w * x, dim=-1, keepdim=True) - y).pow(2).mean()),
    # along an axis: columns 0 and 2 tied, column 1 not; two examples
    ("axis_tied", "input x[2, 3]\ntarget y[3]\nparam W[2, 3]\nminimize mse(max(x * W, axis=0), y)",
     2, [1] * 6, [1, 2, 3, 1, 0, 3, 2, 1, 0, 2, 1, 5], [0, 0, 0, 1, 1, 1],
     [1 / 2, 4 / 3, 3 / 2, 1 / 2, 0, 49 / 6],
     lambda w, x, y: ((torch.amax(x.view(-1, 2, 3) * w.view(2, 3), dim=1) - y.view(-1, 3)).pow(2)
                      .mean(dim=1)).mean()),
    # min(x) is -max(-x): its ties split evenly too (torch.amin)
    ("min_tied", "input x[1]\ntarget y[1]\nparam w[3]\nminimize mse(min(w * x), y)",
     1, [1, 1, 2], [2], [0], [4, 4, 0],
     lambda w, x, y: (torch.amin(w * x, dim=-1, keepdim=True) - y).pow(2).mean()),
    # maximum(a, b) and minimum(a, b) at ties: half to each operand, as
    # torch.maximum and torch.minimum; clamp at its bounds: passed through
    ("maximum_tied", "input x[3]\ntarget y[1]\nparam w[3]\nparam v[3]\nminimize mse(sum(maximum(w * x, v)), y)",
     1, [1, 2, 3, 1, 1, 3], [1, 1, 1], [0], [6, 12, 6, 6, 0, 6],
     lambda w, x, y: (torch.maximum(w[:3] * x, w[3:]).sum(-1, keepdim=True) - y).pow(2).mean()),
    ("minimum_tied", "input x[3]\ntarget y[1]\nparam w[3]\nparam v[3]\nminimize mse(sum(minimum(w * x, v)), y)",
     1, [1, 2, 3, 1, 1, 3], [1, 1, 1], [0], [5, 0, 5, 5, 10, 5],
     lambda w, x, y: (torch.minimum(w[:3] * x, w[3:]).sum(-1, keepdim=True) - y).pow(2).mean()),
    ("clamp_bounds", "input x[4]\ntarget y[1]\nparam w[4]\nminimize mse(sum(clamp(w * x, 0, 1)), y)",
     1, [-1, 0, 1, 2], [1, 1, 1, 1], [0], [0, 4, 4, 0],
     lambda w, x, y: (torch.clamp(w * x, 0, 1).sum(-1, keepdim=True) - y).pow(2).mean()),
]
fails = 0
for name, body, n, p, x, y, want, ref in cases:
    d = f"{tmp}/{name}"
    subprocess.run(["mkdir", "-p", d], check=True)
    open(f"{d}/mt.nn", "w").write(f"model mt\nprecision double\n{body}\ntrain {{\n  batch 4\n}}\n")
    r = subprocess.run([G, "-c", f"{d}/mt.nn", "-o", d], capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: gradc: {r.stderr.strip()}"); fails += 1; continue
    r = subprocess.run(["cc", "-std=c99", "-O1", f"-I{d}", f"{tmp}/driver.c", f"{d}/mt.c", "-lm",
                        "-o", f"{d}/run"], capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: cc: {r.stderr.strip()[:400]}"); fails += 1; continue
    data = " ".join(str(v) for v in [n] + p + x + y)
    out = subprocess.run([f"{d}/run"], input=data, capture_output=True, text=True).stdout.split()
    got = [float(v) for v in out[1:]]
    refs = [("the expected", want)]
    if torch is not None:
        w = torch.tensor(p, dtype=torch.float64, requires_grad=True)
        loss = ref(w, torch.tensor(x, dtype=torch.float64).view(n, -1), torch.tensor(y, dtype=torch.float64).view(n, -1))
        loss.backward()
        refs.append(("PyTorch's", w.grad.tolist()))
    bad = [f"{what} {[round(v, 6) for v in g]}" for what, g in refs
           if len(g) != len(got) or any(abs(a - b) > 1e-12 * (1 + abs(b)) for a, b in zip(got, g))]
    if bad:
        print(f"FAIL {name}: gradient {[round(v, 6) for v in got]}, not " + "; ".join(bad)); fails += 1
    else:
        print(f"ok   {name}: gradient {[round(v, 6) for v in got]}" + (" = PyTorch's" if torch else ""))
sys.exit(1 if fails else 0)
EOF
