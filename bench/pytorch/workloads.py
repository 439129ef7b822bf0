"""The study's training workloads in PyTorch, timed per step on one thread: the other side of the
head-to-head with `examples/head_to_head.rs`, which trains exactly the same ones.

Usage: python bench/pytorch/workloads.py MNIST_DIR [cpu|cuda]
Prints `workload<TAB>steps<TAB>seconds` lines. Every workload: the study's architecture,
PyTorch's default init, fused Adam (lr 1e-3), a warm-up of a few steps, then `steps` timed optimiser steps on a fixed slice of the data, three
times over: the fastest round is printed (as the Rust side does). Written for speed as our side
is: one thread (as each of our stages), subnormals flushed (as ours), the CNNs channels-last on
a CPU (oneDNN's fast path); the `_eval` workloads time a full-set evaluation (inference_mode).
Only torch is needed (no numpy, no torchvision).
"""

import gzip
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
# Set by main(); study.py imports the models and keeps the CPU.
DEVICE = torch.device("cpu")


ROUNDS = 3


def fastest(round_):
    """Seconds of the fastest of ROUNDS runs of round_()."""
    best = math.inf
    for _ in range(ROUNDS):
        sync()
        t = time.perf_counter()
        round_()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def mlp(widths, act):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers).to(DEVICE)


def full_batch(name, widths, act, n, wd):
    x = torch.tensor([[-1.5 + 3.0 * i / n] for i in range(n)], device=DEVICE)
    y = torch.cos(5 * math.pi * x)
    model = mlp(widths, act)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=wd, fused=True)

    def step():
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    steps = 1000

    def round_():
        for _ in range(steps):
            step()

    print(f"{name}\t{steps}\t{fastest(round_):.6f}", flush=True)


def read_idx(path):
    """An IDX file, gzipped (PATH) or as repro keeps it in its data folder (PATH without .gz)."""
    opened = gzip.open(path, "rb") if os.path.exists(path) else open(path.removesuffix(".gz"), "rb")
    with opened as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        images = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(n, rows * cols)
        return images.float() / 255.0
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


class Cnn(nn.Module):
    """conv(k) -> ReLU -> 2x2 max-pool per block, then a ReLU MLP head (dropout after the first
    hidden layer for CNN1), as in the study."""

    def __init__(self, convs, head, dropout):
        super().__init__()
        chans, blocks = 1, []
        for out, k in convs:
            blocks.append(nn.Conv2d(chans, out, k))
            chans = out
        self.convs = nn.ModuleList(blocks)
        self.fcs = nn.ModuleList(nn.Linear(head[i], head[i + 1]) for i in range(len(head) - 1))
        self.dropout = dropout

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = x.flatten(1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i < len(self.fcs) - 1:
                x = F.relu(x)
                if self.dropout and self.dropout[0] == i:
                    x = F.dropout(x, self.dropout[1], self.training)
        return x


class ChannelsLastCnn(Cnn):
    """The same CNN with its activations in channels-last layout, oneDNN's fast path on a CPU (a
    CNN1 training step at batch 500, one thread: 44-45 ms against 55-57 ms on the development
    machine)."""

    def forward(self, x):
        return super().forward(x.view(-1, 1, 28, 28).contiguous(memory_format=torch.channels_last))


def cnn(convs, head, dropout):
    """The fastest layout of the CNN on DEVICE."""
    if DEVICE.type == "cpu":
        return ChannelsLastCnn(convs, head, dropout).to(memory_format=torch.channels_last)
    return Cnn(convs, head, dropout)


def classifier(name, model, images, labels, batch, steps):
    model = model.to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(0)

    def epoch(n):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            loss.backward()
            opt.step()

    epoch(batch * 3)
    print(f"{name}\t{steps}\t{fastest(lambda: epoch(batch * steps)):.6f}", flush=True)


def evaluation(name, model, images, labels):
    """The full-set evaluation our experiments run after an epoch: batches of 1000, no autograd,
    over 10,000 training images (a "step" is one batch), as `head_to_head.rs` times it."""
    model = model.to(DEVICE).eval()

    def round_():
        with torch.inference_mode():
            for s in range(0, 10000, 1000):
                logits = model(images[s : s + 1000])
                F.cross_entropy(logits, labels[s : s + 1000]).item()
                (logits.argmax(1) == labels[s : s + 1000]).sum().item()

    round_()
    print(f"{name}\t10\t{fastest(round_):.6f}", flush=True)


def main():
    global DEVICE
    DEVICE = torch.device(sys.argv[2] if len(sys.argv) > 2 else "cpu")
    torch.set_num_threads(1)
    # As our side does (subnormals flushed on every numeric stage's threads).
    torch.set_flush_denormal(True)
    full_batch("full_batch_mlp_571", [1, 5, 10, 10, 10, 10, 10, 5, 1], nn.LeakyReLU, 300, 1e-4)
    full_batch("full_batch_mlp_109", [1, 12, 6, 1], nn.ReLU, 1000, 0.0)
    mnist = sys.argv[1]
    images = read_idx(f"{mnist}/train-images-idx3-ubyte.gz").to(DEVICE)
    labels = read_idx(f"{mnist}/train-labels-idx1-ubyte.gz").to(DEVICE)
    for batch, steps in [(5, 1000), (64, 300), (500, 60), (1024, 40)]:
        classifier(f"mnist_mlp_16k_b{batch}", mlp([784, 20, 20, 10], nn.ReLU), images, labels, batch, steps)
    classifier("mnist_mlp_952k_b500", mlp([784, 800, 400, 10], nn.ReLU), images, labels, 500, 20)
    evaluation("mnist_mlp_952k_eval_b1000", mlp([784, 800, 400, 10], nn.ReLU), images, labels)
    shapes = {
        "cnn1": ([(10, 4), (20, 4)], [320, 50, 100, 10], (0, 0.25)),
        "cnn2": ([(10, 4), (20, 4)], [320, 50, 50, 40, 30, 10], None),
        "cnn3": ([(10, 5), (15, 5)], [240, 84, 10], None),
    }
    for name, (convs, head, dropout) in shapes.items():
        classifier(f"{name}_b500", cnn(convs, head, dropout), images, labels, 500, 40)
        evaluation(f"{name}_eval_b1000", cnn(convs, head, dropout), images, labels)


if __name__ == "__main__":
    main()
