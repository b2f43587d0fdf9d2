#!/usr/bin/env bash
# axes.sh: the values of reductions over chosen axes (axis = k or a list,
# negative from the end, keepdims) and of softmax and log_softmax over any
# axis, against NumPy on random inputs. Axes count the per-example axes:
# axis=0 is an example's first axis, never the batch. (Their gradients are
# tests/gradcheck.sh's axis_keepdims and softmax_axis cases.)
. "$(dirname "$0")/lib.bash"
cat > "$tmp/driver.c" <<'C'
/* reads n and n inputs; prints the predictions */
#include "ax.h"
#include <stdio.h>
int main(void)
{
    static double p[AX_PARAM_COUNT], x[AX_MAX_BATCH * AX_INPUT_SIZE], o[AX_MAX_BATCH * AX_OUTPUT_SIZE];
    static unsigned char w[AX_WORKSPACE_BYTES + 64];
    size_t n, i;
    if (scanf("%zu", &n) != 1 || n < 1 || n > AX_MAX_BATCH) return 2;
    for (i = 0; i < n * AX_INPUT_SIZE; i++) if (scanf("%lf", &x[i]) != 1) return 2;
    ax_init(p, 1);
    ax_predict(p, x, n, o, w);
    for (i = 0; i < n * AX_OUTPUT_SIZE; i++) printf("%.17g\n", o[i]);
    return 0;
}
C
/usr/bin/python3 - "$G" "$tmp" <<'PY'
import subprocess, sys
import numpy as np
G, tmp = sys.argv[1], sys.argv[2]
def softmax(x, k):
    e = np.exp(x - x.max(axis=k, keepdims=True))
    return e / e.sum(axis=k, keepdims=True)
# (name, output expression, numpy of one example x [2, 3, 4])
cases = [
    ("sum_0", "sum(x, axis=0)", lambda x: x.sum(axis=0)),
    ("sum_list", "sum(x, axis=[0, 2])", lambda x: x.sum(axis=(0, 2))),
    ("sum_neg_keep", "sum(x, axis=-1, keepdims=true)", lambda x: x.sum(axis=-1, keepdims=True)),
    ("mean_list_keep", "mean(x, axis=[2, -3], keepdims=true)", lambda x: x.mean(axis=(0, 2), keepdims=True)),
    ("mean_all_keep", "mean(x, keepdims=true)", lambda x: x.mean(keepdims=True).reshape(1, 1, 1)),
    ("max_list", "max(x, axis=[1, 2])", lambda x: x.max(axis=(1, 2))),
    ("min_1", "min(x, axis=1)", lambda x: x.min(axis=1)),
    ("min_all", "min(x)", lambda x: x.min().reshape(1)),
    ("softmax_0", "softmax(x, axis=0)", lambda x: softmax(x, 0)),
    ("softmax_1", "softmax(x, axis=1)", lambda x: softmax(x, 1)),
    ("softmax_last", "softmax(x, axis=-1)", lambda x: softmax(x, 2)),
    ("log_softmax_m2", "log_softmax(x, axis=-2)", lambda x: np.log(softmax(x, 1))),
]
rng = np.random.default_rng(3)
n = 3
xs = rng.normal(size=(n, 2, 3, 4)) * 2
fails = 0
for name, expr, ref in cases:
    d = f"{tmp}/{name}"
    subprocess.run(["mkdir", "-p", d], check=True)
    open(f"{d}/ax.nn", "w").write(f"model ax\nprecision double\ninput x[2, 3, 4]\ntarget y[1]\nparam w[1]\n"
                                   f"minimize mse(w * sum(x), y)\noutput {expr}\n")
    r = subprocess.run([G, "-c", f"{d}/ax.nn", "-o", d], capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: gradc: {r.stderr.strip()}"); fails += 1; continue
    r = subprocess.run(["cc", "-std=c99", "-O1", f"-I{d}", f"{tmp}/driver.c", f"{d}/ax.c", "-lm", "-o", f"{d}/run"],
                       capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL {name}: cc: {r.stderr.strip()[:400]}"); fails += 1; continue
    data = " ".join(str(v) for v in [n] + xs.reshape(-1).tolist())
    got = np.array([float(v) for v in subprocess.run([f"{d}/run"], input=data, capture_output=True,
                                                     text=True).stdout.split()])
    want = np.concatenate([np.asarray(ref(x)).reshape(-1) for x in xs])
    if got.shape != want.shape or np.abs(got - want).max() > 1e-12 * (1 + np.abs(want).max()):
        print(f"FAIL {name}: {got[:6]} ... not {want[:6]} ..."); fails += 1
    else:
        print(f"ok   {name}: {expr} = NumPy's ({len(got)} values)")
sys.exit(1 if fails else 0)
PY
