#!/usr/bin/python3
"""torch_gpt.py: the character-level GPT of examples/gpt.nn in PyTorch eager,
the peer of benchmark M6 and of `make gpt`.

    /usr/bin/python3 bench/torch_gpt.py step [MIN_SAMPLES [MAX_SAMPLES [BUDGET_S [WARM_S]]]]
    /usr/bin/python3 bench/torch_gpt.py train TEXT [STEPS]
    /usr/bin/python3 bench/torch_gpt.py --flops

The recipe of nanoGPT's CPU run: 4 blocks, 4 heads, width 128, context 64,
batch 12, vocabulary 65; pre-norm blocks (layer norm with a gain and no
bias), no biases in the linear maps, exact GELU, output weights tied to the
embedding; AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices
only), cosine from 1e-3 to 1e-4 after 100 warm-up steps; no dropout, no
gradient clipping (examples/gpt.nn's train block). One
thread (torch.set_num_threads(1)).

step: the time of one training step (forward, loss, backward, AdamW) on one
batch in memory, printed as bench/step.c does:
    median_ms=.. min_ms=.. samples=.. reps=.. batch=.. loss0=.. loss=..
train: trains on the first 90% of TEXT and prints the validation loss
(mean over 200 random windows of the last 10%) every 250 steps.
--flops: the FLOPs of one step, counted with gradc's conventions (2mnk per
product), no torch needed.
"""
import math
import sys
import time

V, T, D, H, L, B = 65, 64, 128, 4, 4, 12
LR, MIN_LR, WARMUP, STEPS, WD = 1e-3, 1e-4, 100, 2000, 0.1


def flops():
    mm = 0
    per_block = 2 * T * D * 3 * D + 2 * H * T * T * (D // H) * 2 + 2 * T * D * D + 2 * T * D * 4 * D * 2
    mm = L * per_block + 2 * T * D * V
    fwd = B * mm
    return fwd, 2 * fwd


def build(torch):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.g1 = nn.Parameter(torch.ones(D))
            self.g2 = nn.Parameter(torch.ones(D))
            self.Wqkv = nn.Parameter(torch.randn(D, 3 * D) * 0.02)
            self.Wo = nn.Parameter(torch.randn(D, D) * 0.02)
            self.Wfc = nn.Parameter(torch.randn(D, 4 * D) * 0.02)
            self.Wout = nn.Parameter(torch.randn(4 * D, D) * 0.02)

        def forward(self, x):  # x [B, T, D]
            qkv = (F.layer_norm(x, (D,)) * self.g1) @ self.Wqkv
            q, k, v = qkv.split(D, dim=2)
            q = q.view(B, T, H, D // H).transpose(1, 2)
            k = k.view(B, T, H, D // H).transpose(1, 2)
            v = v.view(B, T, H, D // H).transpose(1, 2)
            att = (q @ k.transpose(2, 3)) / math.sqrt(D // H)
            att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
            a = x + y @ self.Wo
            return a + F.gelu((F.layer_norm(a, (D,)) * self.g2) @ self.Wfc) @ self.Wout

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Parameter(torch.randn(V, D) * 0.02)
            self.wpe = nn.Parameter(torch.randn(T, D) * 0.02)
            self.blocks = nn.ModuleList([Block() for _ in range(L)])
            self.gf = nn.Parameter(torch.ones(D))

        def forward(self, tok, nxt):
            h = self.wte[tok] + self.wpe
            for b in self.blocks:
                h = b(h)
            logits = (F.layer_norm(h, (D,)) * self.gf) @ self.wte.t()
            return F.cross_entropy(logits.reshape(-1, V), nxt.reshape(-1))

    model = GPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.99))
    return model, opt


def lr_at(step):
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    r = (step - WARMUP) / max(1, STEPS - WARMUP)
    return MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * r))


def main(argv):
    if len(argv) >= 2 and argv[1] == "--flops":
        f, b = flops()
        n = sum([V * D, T * D, D] + [L * (2 * D + 3 * D * D + D * D + 8 * D * D)])
        print(f"forward={f} backward={b} update={10 * n} total={f + b + 10 * n} params={n}")
        return 0
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(1337)
    model, opt = build(torch)
    if len(argv) >= 3 and argv[1] == "train":
        text = open(argv[2], "rb").read().decode("utf-8")
        chars = sorted(set(text))
        ix = {c: i for i, c in enumerate(chars)}
        data = torch.tensor([ix[c] for c in text], dtype=torch.long)
        n = int(0.9 * len(data))
        tr, va = data[:n], data[n:]
        steps = int(argv[3]) if len(argv) > 3 else STEPS

        def batch(d):
            i = torch.randint(len(d) - T - 1, (B,))
            return torch.stack([d[j:j + T] for j in i]), torch.stack([d[j + 1:j + T + 1] for j in i])

        t0 = time.time()
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(s)
            x, y = batch(tr)
            loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (s + 1) % 250 == 0 or s + 1 == steps:
                with torch.no_grad():
                    vl = sum(model(*batch(va)).item() for _ in range(200)) / 200
                print(f"step {s + 1}  loss {loss.item():.4f}  val_loss {vl:.4f}  {time.time() - t0:.1f}s", flush=True)
        return 0
    if len(argv) < 2 or argv[1] != "step":
        print(__doc__, file=sys.stderr)
        return 2
    min_samples = max(1, int(argv[2])) if len(argv) > 2 else 10
    max_samples = max(min_samples, int(argv[3])) if len(argv) > 3 else 200
    budget = float(argv[4]) if len(argv) > 4 else 3.0
    warm = float(argv[5]) if len(argv) > 5 else 1.0
    x = torch.randint(V, (B, T))
    y = torch.randint(V, (B, T))

    def step():
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    loss0 = step()
    t0 = time.perf_counter()
    k = 1
    while time.perf_counter() - t0 < warm or k < 2:
        step()
        k += 1
    samples = []
    t0 = time.perf_counter()
    while len(samples) < min_samples or (len(samples) < max_samples and time.perf_counter() - t0 < budget):
        s = time.perf_counter()
        loss = step()
        samples.append((time.perf_counter() - s) * 1e3)
    samples.sort()
    med = samples[len(samples) // 2] if len(samples) % 2 else (samples[len(samples) // 2 - 1] + samples[len(samples) // 2]) / 2
    print(f"median_ms={med:.4f} min_ms={samples[0]:.4f} samples={len(samples)} reps=1 batch={B} loss0={loss0:.5f} loss={loss:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
