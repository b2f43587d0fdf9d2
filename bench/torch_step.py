#!/usr/bin/python3
"""torch_step.py: the benchmark's training step in PyTorch eager, for comparison.

    /usr/bin/python3 bench/torch_step.py MODEL [MIN_SAMPLES [MAX_SAMPLES [BUDGET_S [WARM_S]]]]
    python3 bench/torch_step.py --flops MODEL    (no torch needed)

MODEL is m1..m5 (bench/models/MODEL.nn). One step: forward, loss, backward
(x does not require grad, so no input gradient is computed) and a hand-written
SGD update p -= lr*g under torch.no_grad(), on one mini-batch already in
memory, single-threaded. Timing as bench/step.c: warm-up for WARM_S seconds
(at least 2 steps), then samples of REPS steps (each sample >= 50 us) until
MIN_SAMPLES are done and MAX_SAMPLES are done or BUDGET_S has passed; prints

    median_ms=.. min_ms=.. samples=.. reps=.. batch=.. loss0=.. loss=..

--flops prints the FLOPs of one step counted analytically, with gradc's
conventions (docs/emit.md, stats): 2*m*n*k per matrix product or
convolution, one per element of a bias add, activation, mask, pooling
window element or reduction input, four per logit for softmax
cross-entropy, two per parameter for the update; no input gradient for the
first layer:  forward=F backward=B update=U total=T
"""
import sys
import time

LR = 0.01

# Layer lists: ("dense", out, act), ("conv", out, k, act) with 'same'
# padding and stride 1, ("pool", 2) max pooling, ("flatten",).
MODELS = {
    "m1": dict(input=(3,), batch=32, loss="bce",
               layers=[("dense", 16, "relu"), ("dense", 16, "relu"), ("dense", 1, None)]),
    "m2": dict(input=(10,), batch=64, loss="mse", layers=[("dense", 1, None)]),
    "m3": dict(input=(784,), batch=64, loss="ce", nclass=10,
               layers=[("dense", 256, "relu"), ("dense", 128, "relu"), ("dense", 10, None)]),
    "m4": dict(input=(1024,), batch=256, loss="ce", nclass=10,
               layers=[("dense", 4096, "relu"), ("dense", 4096, "relu"), ("dense", 10, None)]),
    "m5": dict(input=(1, 28, 28), batch=64, loss="ce", nclass=10,
               layers=[("conv", 32, 5, "relu"), ("pool", 2), ("conv", 64, 5, "relu"), ("pool", 2),
                       ("flatten",), ("dense", 1024, "relu"), ("dense", 10, None)]),
}


def prod(s):
    r = 1
    for d in s:
        r *= d
    return r


def flops(name):
    """(forward, backward, update) FLOPs of one step, counted analytically."""
    m = MODELS[name]
    n = m["batch"]
    shape = m["input"]
    fwd = bwd = params = 0
    first = True  # the layer reading x: no input gradient
    for layer in m["layers"]:
        kind = layer[0]
        if kind == "dense":
            k, out = prod(shape), layer[1]
            mm = 2 * n * out * k
            fwd += mm + n * out                       # product, bias add
            bwd += mm + n * out                       # weight gradient, bias gradient (sum over batch)
            if not first:
                bwd += mm                             # input gradient
            params += out * k + out
            shape = (out,)
            act = layer[2]
        elif kind == "conv":
            c, h, w = shape
            out, kk = layer[1], layer[2]
            mm = 2 * n * out * h * w * c * kk * kk
            fwd += mm + n * out * h * w
            bwd += mm + n * out * h * w
            if not first:
                bwd += mm
            params += out * c * kk * kk + out
            shape = (out, h, w)
            act = layer[3]
        elif kind == "pool":
            c, h, w = shape
            fwd += n * c * h * w                      # one per window element
            bwd += n * c * h * w                      # route the gradient back
            shape = (c, h // layer[1], w // layer[1])
            act = None
        else:  # flatten
            shape = (prod(shape),)
            act = None
        if act == "relu":
            fwd += n * prod(shape)
            bwd += n * prod(shape)                    # the mask
        if kind in ("dense", "conv"):
            first = False
    out = prod(shape)
    if m["loss"] == "ce":
        fwd += 4 * n * out
        bwd += 2 * n * out                            # softmax - onehot, scaled
    else:                                             # bce_logits, mse
        fwd += 4 * n * out
        bwd += 2 * n * out
    return fwd, bwd, 2 * params


def build(name, torch):
    import torch.nn.functional as F
    m = MODELS[name]
    n = m["batch"]
    g = torch.Generator().manual_seed(42)
    shape = m["input"]
    params = []
    for layer in m["layers"]:
        if layer[0] == "dense":
            k = prod(shape)
            W = torch.randn(layer[1], k, generator=g) * (2.0 / k) ** 0.5
            params += [W, torch.zeros(layer[1])]
            shape = (layer[1],)
        elif layer[0] == "conv":
            c = shape[0]
            fan = c * layer[2] * layer[2]
            W = torch.randn(layer[1], c, layer[2], layer[2], generator=g) * (2.0 / fan) ** 0.5
            params += [W, torch.zeros(layer[1])]
            shape = (layer[1],) + tuple(shape[1:])
        elif layer[0] == "pool":
            shape = (shape[0], shape[1] // layer[1], shape[2] // layer[1])
        else:
            shape = (prod(shape),)
    params = [p.contiguous().requires_grad_(True) for p in params]
    x = torch.rand((n,) + tuple(m["input"]), generator=g) * 2 - 1
    if m["loss"] == "ce":
        y = torch.randint(0, m["nclass"], (n,), generator=g)
    elif m["loss"] == "bce":
        y = torch.randint(0, 2, (n, 1), generator=g).float()
    else:
        y = torch.rand(n, 1, generator=g) * 2 - 1
    layers = m["layers"]
    loss_kind = m["loss"]

    def forward(x):
        h = x
        i = 0
        for layer in layers:
            if layer[0] == "dense":
                h = F.linear(h, params[i], params[i + 1])
                i += 2
                act = layer[2]
            elif layer[0] == "conv":
                h = F.conv2d(h, params[i], params[i + 1], stride=1, padding=layer[2] // 2)
                i += 2
                act = layer[3]
            elif layer[0] == "pool":
                h = F.max_pool2d(h, layer[1])
                act = None
            else:
                h = h.flatten(1)
                act = None
            if act == "relu":
                h = F.relu(h)
        return h

    def step():
        z = forward(x)
        if loss_kind == "ce":
            loss = F.cross_entropy(z, y)
        elif loss_kind == "bce":
            loss = F.binary_cross_entropy_with_logits(z, y)
        else:
            loss = F.mse_loss(z, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(LR * p.grad)
                p.grad = None
        return loss.detach()

    return step, n


def main(argv):
    if len(argv) >= 3 and argv[1] == "--flops":
        f, b, u = flops(argv[2])
        print("forward=%d backward=%d update=%d total=%d" % (f, b, u, f + b + u))
        return 0
    if len(argv) < 2 or argv[1] not in MODELS:
        sys.stderr.write(__doc__)
        return 2
    name = argv[1]
    min_samples = max(1, int(argv[2])) if len(argv) > 2 else 20
    max_samples = max(min_samples, int(argv[3])) if len(argv) > 3 else 2000
    budget = float(argv[4]) if len(argv) > 4 else 2.0
    warm = float(argv[5]) if len(argv) > 5 else 0.5

    import torch
    torch.set_num_threads(1)
    step, n = build(name, torch)
    now = time.perf_counter

    loss0 = float(step())
    t_start, best = now(), 1e30
    k = 0
    while k < 1 or now() - t_start < warm:
        t0 = now()
        loss = step()
        best = min(best, now() - t0)
        k += 1
    reps = 1 if best >= 50e-6 else -(-50e-6 // best)
    reps = int(reps)
    times = []
    t_start = now()
    while len(times) < min_samples or (len(times) < max_samples and now() - t_start < budget):
        t0 = now()
        for _ in range(reps):
            loss = step()
        times.append((now() - t0) / reps)
    times.sort()
    ns = len(times)
    med = times[ns // 2] if ns % 2 else 0.5 * (times[ns // 2 - 1] + times[ns // 2])
    print("median_ms=%.6f min_ms=%.6f samples=%d reps=%d batch=%d loss0=%.6g loss=%.6g threads=%d torch=%s"
          % (med * 1e3, times[0] * 1e3, ns, reps, n, loss0, float(loss),
             torch.get_num_threads(), torch.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
