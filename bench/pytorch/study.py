"""The whole default study's computation in PyTorch, experiment by experiment, one after another:
the baseline for "the pipeline against the PyTorch scripts" (bench/RESULTS.md). Same models, data
sizes, batch sizes, optimiser, epochs and evaluation passes as our stages; the step counts that
depend on a run (sim_functions' stopping rule, random_labels' epochs to 90 %, min_ratio's steps on
the gradient norm) are read from the artifacts of one of our runs, so both sides do the same work.

Usage: python bench/pytorch/study.py MNIST_DIR ARTIFACTS_DIR [FRACTION]
(MNIST_DIR: the four IDX files, gzipped or not, e.g. a workspace's data/mnist.)
Each training loop runs FRACTION of its steps (default 0.1; 1 runs everything) and is scaled to
the full count; each kind of evaluation pass is timed once and multiplied by its count. PyTorch
keeps its default threads (every core), as a script run on its own would. Prints one line per
experiment (`experiment<TAB>seconds`) and the total.
"""

import csv
import itertools
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from workloads import Cnn, mlp, read_idx

torch.manual_seed(0)
FRACTION = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def scaled(steps, step):
    """Seconds for `steps` calls of step(): FRACTION of them run (at least one), scaled up."""
    run = max(1, math.ceil(steps * FRACTION))
    t = time.perf_counter()
    for _ in range(run):
        step()
    return (time.perf_counter() - t) * steps / run


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def full_batch(model, x, y, steps, wd=0.0):
    """Seconds for `steps` full-batch Adam steps (lr 1e-3) on the MSE of model(x) against y."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=wd)

    def step():
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()

    return scaled(steps, step)


def grid(n, start, step):
    return torch.tensor([[start + step * i] for i in range(n)], dtype=torch.float64).float()


def sim_functions(art):
    """Spec 1: 18 full-batch runs on 300 points, each for the epochs it ran in our run."""
    x = grid(300, -1.5, 0.01)
    targets = {"f1": torch.sin(5 * math.pi * x) / (5 * math.pi * x), "f2": torch.sign(torch.sin(5 * math.pi * x))}
    shapes = {"m1": [1, 5, 10, 10, 10, 10, 10, 5, 1], "m2": [1, 10, 18, 15, 4, 1], "m3": [1, 190, 1]}
    return sum(
        full_batch(mlp(shapes[r["model"]], nn.LeakyReLU), x, targets[r["function"]], int(r["epochs"]), 1e-4)
        for r in rows(f"{art}/sim_functions/summary.csv")
    )


def weights_pca():
    """Spec 3 as we run it: 8 runs of 300 full-batch epochs, 1-30-20-1 on f1's grid."""
    x = grid(300, -1.5, 0.01)
    y = torch.sin(5 * math.pi * x) / (5 * math.pi * x)
    return sum(full_batch(mlp([1, 30, 20, 1], nn.ReLU), x, y, 300) for _ in range(8))


def grad_norm():
    """Spec 4: 3 runs of 2000 full-batch epochs, the gradient norm read after each."""
    x = torch.linspace(-1, 1, 200).unsqueeze(1)
    y = torch.sign(torch.sin(5 * math.pi * x))
    total = 0.0
    for _ in range(3):
        model = mlp([1, 5, 10, 10, 10, 10, 10, 5, 1], nn.ReLU)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())).item()
            opt.step()

        total += scaled(2000, step)
    return total


def min_ratio(art):
    """Spec 5 as we run it: per run, 100 full-batch epochs on 1000 samples; Adam on ‖∇L‖² (double
    backward) and Levenberg–Marquardt steps, as many as our run took (`norm_steps`: at most 2000
    Adam steps, then the LM ones); a Hessian (109 HVPs) per LM step and one at the end, and its
    eigenvalues."""
    x = 20 * torch.rand(1000, 1) - 10
    y = torch.cos(x)
    total = 0.0
    for r in rows(f"{art}/min_ratio/results.csv"):
        model = mlp([1, 12, 6, 1], nn.ReLU)
        params = list(model.parameters())
        total += full_batch(model, x, y, 100)
        norm_opt = torch.optim.Adam(params, lr=1e-2)

        def norm_step():
            norm_opt.zero_grad()
            grads = torch.autograd.grad(F.mse_loss(model(x), y), params, create_graph=True)
            sum((g**2).sum() for g in grads).backward()
            norm_opt.step()

        def hessian():
            grads = torch.autograd.grad(F.mse_loss(model(x), y), params, create_graph=True)
            flat = torch.cat([g.reshape(-1) for g in grads])
            hessian_rows = []
            for i in range(flat.numel()):
                row = torch.autograd.grad(flat[i], params, retain_graph=True)
                hessian_rows.append(torch.cat([h.reshape(-1) for h in row]))
            return torch.stack(hessian_rows)

        def lm_step():
            h = hessian().double()
            g = torch.cat([p.reshape(-1) for p in torch.autograd.grad(F.mse_loss(model(x), y), params)]).double()
            torch.linalg.solve(h @ h + 1e-3 * torch.eye(h.shape[0], dtype=h.dtype), h @ g)

        steps = int(r["norm_steps"])
        adam_steps = min(steps, 2000)
        total += scaled(adam_steps, norm_step)
        total += scaled(steps - adam_steps, lm_step)
        total += timed(lambda: torch.linalg.eigvalsh(hessian().double()))
    return total


def evaluate(model, images, labels, batch=1000):
    with torch.no_grad():
        for s in range(0, len(images), batch):
            F.cross_entropy(model(images[s : s + batch]), labels[s : s + batch]).item()


def mnist_training(model, images, labels, batch, epochs, evals):
    """Seconds for `epochs` epochs of shuffled mini-batches (Adam, lr 1e-3) plus the evaluation
    passes `evals`: (count, images, labels) triples."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(images)
    order = torch.randperm(n)
    batches = [order[s : s + batch] for s in range(0, n, batch)]
    cycle = itertools.cycle(batches)

    def step():
        idx = next(cycle)
        opt.zero_grad()
        F.cross_entropy(model(images[idx]), labels[idx]).backward()
        opt.step()

    total = scaled(epochs * len(batches), step)
    for count, ev_images, ev_labels in evals:
        total += count * timed(lambda: evaluate(model, ev_images, ev_labels))
    return total


def sensitivity_pass(images, labels):
    """Over the test set: the Frobenius norm of the softmax output's Jacobian with respect to the
    input (one backward pass per class) and the norm of the loss's input gradient."""
    model = mlp([784, 20, 20, 10], nn.ReLU)

    def run():
        for s in range(0, len(images), 1000):
            x = images[s : s + 1000].clone().requires_grad_(True)
            logits = model(x)
            probs = F.softmax(logits, dim=1)
            jacobian = [torch.autograd.grad(probs[:, k].sum(), x, retain_graph=True)[0] for k in range(10)]
            torch.stack(jacobian).pow(2).sum((0, 2)).sqrt().mean().item()
            (g,) = torch.autograd.grad(F.cross_entropy(logits, labels[s : s + 1000]), x)
            g.norm(dim=1).mean().item()

    return timed(run)


def main():
    mnist, art = sys.argv[1], sys.argv[2]
    train_x = read_idx(f"{mnist}/train-images-idx3-ubyte.gz")
    train_y = read_idx(f"{mnist}/train-labels-idx1-ubyte.gz")
    test_x = read_idx(f"{mnist}/t10k-images-idx3-ubyte.gz")
    test_y = read_idx(f"{mnist}/t10k-labels-idx1-ubyte.gz")
    full = [(1, train_x, train_y), (1, test_x, test_y)]

    def every(k):
        return [(k * c, x, y) for c, x, y in full]

    cnns = {
        "cnn1": ([(10, 4), (20, 4)], [320, 50, 100, 10], (0, 0.25)),
        "cnn2": ([(10, 4), (20, 4)], [320, 50, 50, 40, 30, 10], None),
        "cnn3": ([(10, 5), (15, 5)], [240, 84, 10], None),
    }
    random_epochs = int(rows(f"{art}/random_labels/summary.csv")[0]["epochs"])
    subset_x, subset_y = train_x[:10000], torch.randint(0, 10, (10000,))
    hidden = [(2, 5), (4, 6), (10, 20), (20, 40), (50, 80), (100, 120), (180, 100), (400, 200), (600, 300), (800, 400)]
    experiments = {
        "sim_functions": lambda: sim_functions(art),
        "mnist_cnn": lambda: sum(
            mnist_training(Cnn(*shape), train_x, train_y, 500, 15, every(15)) for shape in cnns.values()
        ),
        "weights_pca": weights_pca,
        "grad_norm": grad_norm,
        "min_ratio": lambda: min_ratio(art),
        "random_labels": lambda: mnist_training(
            mlp([784, 120, 120, 16, 10], nn.ReLU), subset_x, subset_y, 50, random_epochs,
            [(random_epochs, subset_x, subset_y), (random_epochs, test_x, test_y)],
        ),
        "params_generalization": lambda: sum(
            mnist_training(mlp([784, a, b, 10], nn.ReLU), train_x, train_y, 500, 30, every(7)) for a, b in hidden
        ),
        # Four trainings of 10 epochs; then 2 learning rates x 31 interpolated models, each
        # evaluated on both sets.
        "interpolation": lambda: sum(
            mnist_training(mlp([784, 20, 40, 10], nn.ReLU), train_x, train_y, b, 10, every(1))
            for b in (64, 64, 1024, 1024)
        )
        + 62 * timed(lambda: [evaluate(mlp([784, 20, 40, 10], nn.ReLU), x, y) for _, x, y in full]),
        # Five trainings of 10 epochs, final metrics, and the sensitivity pass over the test set.
        "sensitivity": lambda: sum(
            mnist_training(mlp([784, 20, 20, 10], nn.ReLU), train_x, train_y, b, 10, every(1))
            + sensitivity_pass(test_x, test_y)
            for b in (5, 25, 125, 500, 1000)
        ),
    }
    total = 0.0
    for name, run in experiments.items():
        seconds = run()
        total += seconds
        print(f"{name}\t{seconds:.1f}", flush=True)
    print(f"total\t{total:.1f}\t(fraction {FRACTION}, {torch.get_num_threads()} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
