"""The whole default study's computation in PyTorch, written for speed on a CPU: the rival of
`make bench` (bench/compare.sh runs it right after our pipeline, on the same machine).

It does the work our stages do, counted the same way, and no more: the same models, data sizes,
batch sizes, optimiser, epochs and evaluation passes (full train and test sets after every epoch
for the CNNs, random_labels, interpolation's and sensitivity's trainings; every fifth epoch and the
last for params_generalization; 31 interpolated models per learning rate on both sets; the input
Jacobian over the test set). The counts that depend on a run (each sim_functions run's stopping
epoch, random_labels' epochs to 90 %, each min_ratio run's steps on the gradient norm) are read
from the artifacts of our run, so both sides train exactly as long.

Written as a PyTorch expert would for this CPU:
- sweeps of one shape train together as stacked models (weights [R, in, out], `baddbmm`), a run
  leaving the stack when it ends, as our batched sweeps do; min_ratio's 100 runs and their
  gradient-norm phase through `torch.func` (`vmap`, `grad`, `vjp`), its Hessians with
  `torch.func.hessian` (forward-over-reverse) in one vmapped call, eigenvalues in one batched call;
- fused Adam (`fused=True`), `zero_grad(set_to_none=True)`, evaluation under `inference_mode`,
  the 31 interpolated models of one learning rate evaluated as one stacked model (their first
  layers one GEMM), the sensitivity Jacobian as one batched backward pass (`is_grads_batched`);
- the experiments split into tasks (a training, a sweep) run by a pool of WORKERS processes
  side by side, dearest first, one intra-op thread each: the parallelism our `-j 2` has (on two
  cores, a second intra-op thread per process only oversubscribes; alone, two threads made the
  CNN step no faster than one here).

Usage: python study.py MNIST_DIR ARTIFACTS_DIR [--workers N] [--only EXP[,EXP]] [--scale F]
MNIST_DIR holds the four IDX files (gzipped or not). --scale F (< 1) shortens every loop to F of
its steps, for a quick check of the script only: its times are not the study's.
Prints `task<TAB>experiment<TAB>wall<TAB>cpu` per task, then `experiment<TAB>NAME<TAB>wall<TAB>cpu`
(summed over its tasks), then `total<TAB>wall<TAB>cpu` (the pool's wall time, and the CPU time of
every worker process, start-up and MNIST loading included).
"""

import argparse
import csv
import math
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian, vjp, vmap

from workloads import cnn, mlp, read_idx

ARGS = None
MNIST = {}


def scaled(n):
    return max(1, math.ceil(n * ARGS.scale))


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------
# Stacked full-batch MLPs (sim_functions, weights_pca, grad_norm, min_ratio's training)


class Stack:
    """R MLPs of one shape as stacked leaf tensors (weights [R, in, out], biases [R, 1, out]),
    PyTorch's default init, fused Adam over all of them (each run's slice is its own Adam)."""

    def __init__(self, widths, runs, act, lr, weight_decay=0.0):
        self.act = act
        self.params = []
        for fan_in, fan_out in zip(widths, widths[1:]):
            bound = 1 / math.sqrt(fan_in)
            self.params.append(torch.empty(runs, fan_in, fan_out).uniform_(-bound, bound).requires_grad_())
            self.params.append(torch.empty(runs, 1, fan_out).uniform_(-bound, bound).requires_grad_())
        self.opt = torch.optim.Adam(self.params, lr=lr, weight_decay=weight_decay, fused=True)

    def forward(self, x):
        layers = len(self.params) // 2
        for i in range(layers):
            x = torch.baddbmm(self.params[2 * i + 1], x, self.params[2 * i])
            if i < layers - 1:
                x = self.act(x)
        return x

    def step(self, x, y):
        """One Adam step on every run's MSE; returns the per-run losses (before the step)."""
        self.opt.zero_grad(set_to_none=True)
        losses = (self.forward(x) - y).pow(2).mean(dim=(1, 2))
        losses.sum().backward()
        self.opt.step()
        return losses.detach()

    def keep(self, kept):
        """Only the runs `kept` (row indices) go on, with their Adam state."""
        self.params, self.opt = keep_rows(self.params, self.opt, kept)

    def flat(self):
        return torch.cat([p.detach().flatten(1) for p in self.params], dim=1)


def keep_rows(params, opt, kept):
    """Rows `kept` of the stacked leaf tensors `params` (a row per run) as new leaves, under a new
    fused Adam with `opt`'s settings and, row for row, its state."""
    index = torch.tensor(kept)
    rows = [p.detach()[index].clone().requires_grad_() for p in params]
    new = torch.optim.Adam(rows, lr=opt.defaults["lr"], weight_decay=opt.defaults["weight_decay"], fused=True)
    for old, row in zip(params, rows):
        new.state[row] = {k: v[index].clone() if v.dim() else v.clone() for k, v in opt.state[old].items()}
    return rows, new


def train_until(stack, x, y, epochs, on_step=None):
    """Trains the stack, run r leaving after epochs[r] steps; x, y: [R, N, 1]."""
    active = list(range(len(epochs)))
    for epoch in range(max(epochs)):
        losses = stack.step(x, y)
        if on_step:
            on_step(losses)
        losses.tolist()  # the stopping rule reads every run's loss after every epoch
        going = [row for row, run in enumerate(active) if epochs[run] > epoch + 1]
        if len(going) < len(active):
            if not going:
                return
            stack.keep(going)
            x, y = x[going], y[going]
            active = [active[row] for row in going]


def sim_grid():
    return (-1.5 + 0.01 * torch.arange(300, dtype=torch.float64)).float().unsqueeze(1)


def sim_target(function, x):
    if function == "f1":
        return torch.sin(5 * math.pi * x) / (5 * math.pi * x)
    return torch.sign(torch.sin(5 * math.pi * x))


def sim_functions(model):
    """The runs of one model (our seeds x 2 functions) as one stack, each to its stopping epoch."""
    shapes = {"m1": [1, 5, 10, 10, 10, 10, 10, 5, 1], "m2": [1, 10, 18, 15, 4, 1], "m3": [1, 190, 1]}
    runs = [r for r in rows(f"{ARGS.artifacts}/sim_functions/summary.csv") if r["model"] == model]
    x = sim_grid()
    xs = x.expand(len(runs), -1, -1).contiguous()
    ys = torch.stack([sim_target(r["function"], x) for r in runs])
    stack = Stack(shapes[model], len(runs), F.leaky_relu, 1e-3, 1e-4)
    train_until(stack, xs, ys, [scaled(int(r["epochs"])) for r in runs])


def weights_pca():
    """8 runs of 300 full-batch epochs, 1-30-20-1 on f1, every parameter kept every 3 epochs."""
    x = sim_grid()
    y = sim_target("f1", x)
    stack = Stack([1, 30, 20, 1], 8, F.relu, 1e-3)
    xs, ys = x.expand(8, -1, -1), y.expand(8, -1, -1)
    path = []
    for epoch in range(1, scaled(300) + 1):
        snapshot = stack.flat() if epoch % 3 == 0 else None
        losses = stack.step(xs, ys)
        if snapshot is not None:
            path.append((losses, snapshot))
    torch.stack([s for _, s in path]).tolist()


def grad_norm():
    """Our seeds' runs (one per row of our summary) of 2000 full-batch epochs as one stack, each
    run's loss and gradient norm kept every epoch."""
    runs = len(rows(f"{ARGS.artifacts}/grad_norm/summary.csv"))
    x = torch.linspace(-1, 1, 200).unsqueeze(1)
    y = torch.sign(torch.sin(5 * math.pi * x))
    stack = Stack([1, 5, 10, 10, 10, 10, 10, 5, 1], runs, F.relu, 1e-3)
    xs, ys = x.expand(runs, -1, -1), y.expand(runs, -1, -1)
    norms, losses = [], []
    for _ in range(scaled(2000)):
        stack.opt.zero_grad(set_to_none=True)
        loss = (stack.forward(xs) - ys).pow(2).mean(dim=(1, 2))
        loss.sum().backward()
        norms.append(torch.stack([p.grad.pow(2).sum(dim=(1, 2)) for p in stack.params]).sum(0).sqrt())
        losses.append(loss.detach())
        stack.opt.step()
    torch.stack(norms).tolist(), torch.stack(losses).tolist()


# ---------------------------------------------------------------------------------------------
# min_ratio: training, the gradient-norm phase and the Hessians, vmapped over runs


def min_ratio(half):
    """Half of the 100 runs (our pipeline trains them as two batches side by side): 3000 epochs of
    Adam at lr 1e-2 (pipeline.toml's min_ratio training), then Adam on ‖∇L‖² (lr 1e-2) for as many steps as each run took in ours (at most 2000),
    then Levenberg–Marquardt steps (a Hessian and a damped solve each, and a trial gradient), and
    the Hessian's eigenvalues at the end."""
    results = rows(f"{ARGS.artifacts}/min_ratio/results.csv")
    results = results[: len(results) // 2] if half == 0 else results[len(results) // 2 :]
    runs = len(results)
    x = 20 * torch.rand(1000, 1) - 10
    y = torch.cos(x)
    stack = Stack([1, 12, 6, 1], runs, F.relu, 1e-2)
    xs, ys = x.expand(runs, -1, -1), y.expand(runs, -1, -1)
    for _ in range(scaled(3000)):
        stack.step(xs, ys)

    net = mlp([1, 12, 6, 1], nn.ReLU)
    shapes = [(name, p.shape) for name, p in net.named_parameters()]
    sizes = [math.prod(s) for _, s in shapes]

    def loss(theta):
        params = {name: t.view(s) for (name, s), t in zip(shapes, theta.split(sizes))}
        return F.mse_loss(functional_call(net, params, (x,)), y)

    # Our stack's flat layout differs from nn.Linear's; the order of the 109 numbers is immaterial here.
    theta = stack.flat().clone()

    def grad_and_hvp(t):
        g, hvp = vjp(grad(loss), t)
        return g, hvp(g)[0]

    batched_grad_and_hvp = vmap(grad_and_hvp)
    norm_steps = [int(r["norm_steps"]) for r in results]
    adam_steps = [scaled(min(s, 2000)) for s in norm_steps]
    lm_steps = [scaled(s - min(s, 2000)) if s > 2000 else 0 for s in norm_steps]
    active = list(range(runs))
    current = theta.clone().requires_grad_()
    opt = torch.optim.Adam([current], lr=1e-2, fused=True)
    for step in range(max(adam_steps)):
        g, hg = batched_grad_and_hvp(current.detach())
        g.norm(dim=1).tolist()  # each run checks its gradient norm against the target
        current.grad = 2 * hg
        opt.step()
        going = [row for row, run in enumerate(active) if adam_steps[run] > step + 1]
        if len(going) < len(active):
            theta[active] = current.detach()
            if not going:
                break
            [current], opt = keep_rows([current], opt, going)
            active = [active[row] for row in going]

    batched_hessian = vmap(hessian(loss))
    batched_grad = vmap(grad(loss))
    active = [r for r in range(runs) if lm_steps[r] > 0]
    for step in range(max(lm_steps, default=0)):
        active = [r for r in active if lm_steps[r] > step]
        if not active:
            break
        t = theta[active]
        h = batched_hessian(t).double()
        g = batched_grad(t).double()
        scale = torch.diagonal(h @ h, dim1=1, dim2=2).amax(dim=1).clamp_min(1e-12)
        eye = torch.eye(h.shape[1], dtype=h.dtype)
        delta = torch.linalg.solve(h @ h + 1e-3 * scale[:, None, None] * eye, (h @ g.unsqueeze(2)))
        trial = (t.double() - delta.squeeze(2)).float()
        batched_grad(trial).norm(dim=1).tolist()
        theta[active] = trial
    torch.linalg.eigvalsh(batched_hessian(theta).double()).tolist()


# ---------------------------------------------------------------------------------------------
# MNIST trainings


def mnist():
    if not MNIST:
        d = ARGS.mnist
        MNIST["train"] = (read_idx(f"{d}/train-images-idx3-ubyte.gz"), read_idx(f"{d}/train-labels-idx1-ubyte.gz"))
        MNIST["test"] = (read_idx(f"{d}/t10k-images-idx3-ubyte.gz"), read_idx(f"{d}/t10k-labels-idx1-ubyte.gz"))
    return MNIST["train"], MNIST["test"]


# Chosen by measurement: CNN1 over 10,000 test images, one thread, 0.45 s at 500 per batch
# against 0.66 s at 1000 (100: 0.47 s, 2000: 0.85 s).
EVAL_BATCH = 500


def evaluate(model, images, labels):
    """Mean cross-entropy and accuracy over a whole set."""
    model.eval()
    loss, hits = torch.zeros(()), torch.zeros((), dtype=torch.long)
    with torch.inference_mode():
        for s in range(0, len(images), EVAL_BATCH):
            logits = model(images[s : s + EVAL_BATCH])
            loss += F.cross_entropy(logits, labels[s : s + EVAL_BATCH], reduction="sum")
            hits += (logits.argmax(1) == labels[s : s + EVAL_BATCH]).sum()
    model.train()
    return loss.item() / len(images), hits.item() / len(images)


def fit(model, train, test, batch, epochs, evaluated, lr=1e-3, weight_decay=0.0):
    """Shuffled mini-batches of Adam; both sets evaluated after the epochs in `evaluated`."""
    images, labels = train
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    n = len(images)
    steps = math.ceil(n / batch)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n)
        for s in range(scaled(steps)):
            idx = order[s * batch : (s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(images[idx]), labels[idx]).backward()
            opt.step()
        if epoch in evaluated:
            evaluate(model, *train)
            evaluate(model, *test)
    return model


def mnist_cnn(name, seed):
    torch.manual_seed(seed)
    shapes = {
        "cnn1": ([(10, 4), (20, 4)], [320, 50, 100, 10], (0, 0.25)),
        "cnn2": ([(10, 4), (20, 4)], [320, 50, 50, 40, 30, 10], None),
        "cnn3": ([(10, 5), (15, 5)], [240, 84, 10], None),
    }
    train, test = mnist()
    fit(cnn(*shapes[name]), train, test, 500, 15, range(1, 16), weight_decay=1e-4)


def random_labels(seed):
    (images, _), test = mnist()
    # As many epochs as our run of this seed took to memorise (its stopping rule).
    runs = rows(f"{ARGS.artifacts}/random_labels/summary.csv")
    epochs = int(next(r for r in runs if int(r["seed"]) == seed)["epochs"])
    subset = (images[:10000], torch.randint(0, 10, (10000,)))
    fit(mlp([784, 120, 120, 16, 10], nn.ReLU), subset, test, 50, epochs, range(1, epochs + 1))


def params_generalization(h1, h2, seed):
    torch.manual_seed(seed)
    train, test = mnist()
    fit(mlp([784, h1, h2, 10], nn.ReLU), train, test, 500, 30, {5, 10, 15, 20, 25, 30})


def interpolation_training(batch, lr):
    train, test = mnist()
    fit(mlp([784, 20, 40, 10], nn.ReLU), train, test, batch, 10, range(1, 11), lr=lr)


def interpolation_line():
    """31 models θ(α) between two trainings, each evaluated on both sets, as one stacked model."""
    train, test = mnist()
    a, b = mlp([784, 20, 40, 10], nn.ReLU), mlp([784, 20, 40, 10], nn.ReLU)
    alphas = torch.linspace(-1, 2, 31)
    with torch.inference_mode():
        layers = [
            (torch.lerp(p.weight.T.expand(31, -1, -1), q.weight.T.expand(31, -1, -1), alphas[:, None, None]),
             torch.lerp(p.bias.expand(31, -1), q.bias.expand(31, -1), alphas[:, None]))
            for p, q in zip([m for m in a if isinstance(m, nn.Linear)], [m for m in b if isinstance(m, nn.Linear)])
        ]
        (w1, b1), rest = layers[0], layers[1:]
        first = w1.permute(1, 0, 2).reshape(784, -1)  # every α's first layer: one GEMM
        for images, labels in (train, test):
            loss, hits = torch.zeros(31), torch.zeros(31, dtype=torch.long)
            for s in range(0, len(images), EVAL_BATCH):
                x, y = images[s : s + EVAL_BATCH], labels[s : s + EVAL_BATCH]
                h = (x @ first).view(len(x), 31, -1).transpose(0, 1) + b1[:, None, :]
                for w, bias in rest:
                    h = torch.baddbmm(bias[:, None, :], F.relu(h), w)
                loss += F.cross_entropy(h.transpose(1, 2), y.expand(31, -1), reduction="none").sum(1)
                hits += (h.argmax(2) == y).sum(1)
            loss.tolist(), hits.tolist()


def sensitivity(batch):
    """A training, then over the test set (chunks of 500) each sample's ‖∂softmax/∂x‖_F (the 10
    rows of the Jacobian in one batched backward pass) and ‖∂ℓ/∂x‖."""
    train, test = mnist()
    model = fit(mlp([784, 20, 20, 10], nn.ReLU), train, test, batch, 10, range(1, 11))
    model.eval()
    images, labels = test
    eye = torch.eye(10)
    for s in range(0, len(images), 500):
        x = images[s : s + 500].clone().requires_grad_(True)
        logits = model(x)
        probs = F.softmax(logits, dim=1)
        outputs = eye[:, None, :].expand(10, len(x), 10)
        (jacobian,) = torch.autograd.grad(probs, x, outputs, retain_graph=True, is_grads_batched=True)
        jacobian.pow(2).sum((0, 2)).sqrt().sum().item()
        (g,) = torch.autograd.grad(F.cross_entropy(logits, labels[s : s + 500], reduction="sum"), x)
        g.norm(dim=1).sum().item()


# ---------------------------------------------------------------------------------------------
# The tasks, dearest first, and the pool that runs them


def tasks():
    """(experiment, task name, function, args, rough cost) for the whole default study."""
    hidden = [(2, 5), (4, 6), (10, 20), (20, 40), (50, 80), (100, 120), (180, 100), (400, 200), (600, 300), (800, 400)]
    out = [("sim_functions", f"sim_functions[{m}]", sim_functions, (m,), c) for m, c in (("m1", 60), ("m2", 40), ("m3", 50))]
    # Our seeds of each experiment (the rival trains the same runs): read from our summaries.
    def seeds_of(experiment):
        return sorted({int(r["seed"]) for r in rows(f"{ARGS.artifacts}/{experiment}/summary.csv")})

    out += [
        ("mnist_cnn", f"mnist_cnn[{n},seed {s}]", mnist_cnn, (n, s), 100)
        for n in ("cnn1", "cnn2", "cnn3")
        for s in seeds_of("mnist_cnn")
    ]
    out += [("weights_pca", "weights_pca", weights_pca, (), 1), ("grad_norm", "grad_norm", grad_norm, (), 2)]
    out += [("min_ratio", f"min_ratio[half {h}]", min_ratio, (h,), 30) for h in (0, 1)]
    out += [("random_labels", f"random_labels[seed {s}]", random_labels, (s,), 25) for s in seeds_of("random_labels")]
    out += [
        (
            "params_generalization",
            f"params_generalization[{a}x{b},seed {s}]",
            params_generalization,
            (a, b, s),
            1 + (784 * a + a * b) / 6000,
        )
        for a, b in hidden
        for s in seeds_of("params_generalization")
    ]
    out += [
        ("interpolation", f"interpolation[b{b},lr{lr}]", interpolation_training, (b, lr), 4)
        for b in (64, 1024) for lr in (1e-3, 1e-2)
    ]
    out += [("interpolation", f"interpolation[line {i}]", interpolation_line, (), 2) for i in range(2)]
    out += [
        ("sensitivity", f"sensitivity[b{b},seed {s}]", sensitivity, (b,), 3 + 60 / b**0.5)
        for b in (5, 25, 125, 500, 1000) for s in seeds_of("sensitivity")
    ]
    if ARGS.only:
        out = [t for t in out if t[0] in ARGS.only.split(",")]
    return sorted(out, key=lambda t: -t[4])


def start_worker(args):
    global ARGS
    ARGS = args
    torch.set_num_threads(1)
    # As our side does (nn::backend::flush_subnormals): sim_functions' deep narrow nets meet
    # subnormal floats, each a microcode assist on x86.
    if os.environ.get("STUDY_KEEP_SUBNORMALS") is None:
        torch.set_flush_denormal(True)
    torch.manual_seed(os.getpid())


def run_task(experiment, name, function, args):
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return experiment, name, time.perf_counter() - wall, time.process_time() - cpu


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("mnist")
    parser.add_argument("artifacts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="")
    parser.add_argument("--scale", type=float, default=1.0)
    ARGS = parser.parse_args()
    start = time.perf_counter()
    per_experiment = {}
    with ProcessPoolExecutor(ARGS.workers, initializer=start_worker, initargs=(ARGS,)) as pool:
        futures = [pool.submit(run_task, e, n, f, a) for e, n, f, a, _ in tasks()]
        for future in futures:
            experiment, name, wall, cpu = future.result()
            print(f"task\t{name}\t{experiment}\t{wall:.2f}\t{cpu:.2f}", flush=True)
            w, c = per_experiment.get(experiment, (0.0, 0.0))
            per_experiment[experiment] = (w + wall, c + cpu)
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    for experiment, (w, c) in per_experiment.items():
        print(f"experiment\t{experiment}\t{w:.2f}\t{c:.2f}")
    cpu = children.ru_utime + children.ru_stime
    print(f"total\t{wall:.2f}\t{cpu:.2f}\t(torch {torch.__version__}, {ARGS.workers} workers, 1 thread each)")


if __name__ == "__main__":
    main()
