#!/usr/bin/env python3
"""The yardstick for `lab bench`'s model steps: the same 2-block models in eager PyTorch.

Not part of the product (which never needs Python): run it on a GPU machine that has PyTorch,
next to `lab bench --filter model`. Each model has StateLab's block layout (pre-LayerNorm cell,
headwise norm, residual, pre-LayerNorm gated FFN of width 4/3 d, residual; final LayerNorm,
linear head) at the S config (B 128, T 64, d 128, 4 heads), trained with AdamW and global-norm
clipping at 1.0. The cells use the fastest kernels PyTorch offers here: cuDNN for the LSTM,
fused scaled-dot-product (flash) attention for the Transformer, and for the sLSTM a Python loop
over time, which is what an eager sLSTM is. The LSTM leaves out StateLab's causal conv on the
i, f gates, so PyTorch does a little less work there. Median of --reps steps timed with CUDA
events after warm-up.

    python3 scripts/bench_pytorch.py [--precision fp32|tf32] [--json out.json]
"""
import argparse
import json
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

B, T, D, H, VOCAB = 128, 64, 128, 4, 4


class GatedFFN(nn.Module):
    def __init__(self, d):
        super().__init__()
        width = int(round(d * 4 / 3))
        self.up = nn.Linear(d, 2 * width)
        self.down = nn.Linear(width, d)

    def forward(self, x):
        a, g = self.up(x).chunk(2, dim=-1)
        return self.down(a * F.gelu(g))


class CuDnnLstm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.rnn = nn.LSTM(d, d, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


class EagerSlstm(nn.Module):
    """The sLSTM with exponential input gate, sigmoid forget gate and the stabilizer m."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.w = nn.Linear(d, 4 * d)
        self.r = nn.Parameter(torch.zeros(heads, self.dh, 4 * self.dh))

    def forward(self, x):
        b, t, d = x.shape
        pre = self.w(x).view(b, t, self.heads, 4 * self.dh)
        h = x.new_zeros(b, self.heads, self.dh)
        c = torch.zeros_like(h)
        n = torch.zeros_like(h)
        m = torch.full_like(h, float("-inf"))
        out = []
        for s in range(t):
            g = pre[:, s] + torch.einsum("bhd,hde->bhe", h, self.r)
            zi, ii, fi, oi = g.chunk(4, dim=-1)
            log_f = F.logsigmoid(fi)
            m_new = torch.maximum(log_f + m, ii)
            i = torch.exp(ii - m_new)
            f = torch.exp(log_f + m - m_new)
            c = f * c + i * torch.tanh(zi)
            n = f * n + i
            h = torch.sigmoid(oi) * c / n
            m = m_new
            out.append(h)
        return torch.stack(out, dim=1).reshape(b, t, d)


class CausalAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, cell, d, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.cell = cell
        self.head_norm = nn.GroupNorm(heads, d)
        self.ffn = GatedFFN(d)

    def forward(self, x):
        y = self.cell(self.norm1(x))
        x = x + self.head_norm(y.transpose(1, 2)).transpose(1, 2)
        return x + self.ffn(self.norm2(x))


class Model(nn.Module):
    def __init__(self, make_cell, heads):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.blocks = nn.ModuleList([Block(make_cell(), D, heads) for _ in range(2)])
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


# name: (cell, heads); the LSTM is one head of d units, as in `lab bench`.
CELLS = {
    "lstm (cuDNN)": (lambda: CuDnnLstm(D), 1),
    "slstm (eager loop)": (lambda: EagerSlstm(D, H), H),
    "transformer (flash SDPA)": (lambda: CausalAttention(D, H), H),
}


def time_steps(model, reps, warmup=10):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    tokens = torch.randint(0, VOCAB, (B, T), device="cuda")
    targets = torch.randint(0, VOCAB, (B, T), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(tokens).reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["fp32", "tf32"], default="fp32")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    tf32 = args.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    rows = []
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.precision}")
    for name, (make_cell, heads) in CELLS.items():
        ms = time_steps(Model(make_cell, heads).cuda(), args.reps)
        rows.append({"model": name, "precision": args.precision, "step_median_ms": ms})
        print(f"{name:26s} {ms:9.3f} ms/step")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
