#!/usr/bin/env python3
"""`make bench` part: what a kill costs with checkpoints, and what a checkpoint costs.

1. The optimisation experiments (`repro run min_ratio weights_pca grad_norm -j 2`, default study)
   from an empty cache: once uninterrupted, then killed with SIGKILL 2, 5, 9, 14, 21 and 30 s after
   each start and run to the end. Total CPU seconds (the processes' own, from wait4) and wall
   seconds of all the runs against the uninterrupted run: the work each kill lost.
2. The same for one CNN training (mnist_cnn's cnn1), killed 20, 45 and 70 s after each start.
3. What one checkpoint costs (the `[checkpoint]` line of a complete run): the largest model of the
   study (params_generalization's 800x400 MLP, 952k parameters) and the 100-seed min_ratio batch.

Usage: python3 bench/checkpoint.py [OUT_DIR] [--without]   (needs target/release/repro; MNIST from
$MNIST_MIRROR or ../shared/mnist). --without: the kill sequences with checkpoints off (before).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPRO = os.path.join(ROOT, "target", "release", "repro")
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
WITHOUT = "--without" in sys.argv
OUT = os.path.abspath(ARGS[0] if ARGS else os.path.join(ROOT, "target", "bench-checkpoint"))
ENV = dict(os.environ, CI="1")
ENV.setdefault("MNIST_MIRROR", os.path.join(os.path.dirname(ROOT), "shared", "mnist"))


def workspace(name):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    shutil.copy(os.path.join(ROOT, "pipeline.toml"), path)
    # MNIST is fetched once, outside the measured runs.
    shared = os.path.join(OUT, "data")
    os.makedirs(shared, exist_ok=True)
    os.symlink(shared, os.path.join(path, "data"))
    return path


def run(ws, args, kill_after=None):
    """One `repro` process: (wall s, CPU s, output, killed)."""
    started = time.monotonic()
    log = open(os.path.join(ws, "log.txt"), "a")
    child = subprocess.Popen([REPRO] + args, cwd=ws, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    killed = False
    while True:
        # Reaped here, not by Popen, so that wait4 gives the process's CPU time.
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if kill_after is not None and not killed and time.monotonic() - started >= kill_after:
            child.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    log.close()
    if not killed and child.returncode != 0:
        sys.exit(f"repro {' '.join(args)} failed in {ws}: see log.txt")
    return wall, usage.ru_utime + usage.ru_stime, killed


def kill_sequence(name, args, kills):
    ws = workspace(name + "-reference")
    run(ws, ["run", "mnist.fetch"]) if "mnist" in name else None
    wall, cpu, _ = run(ws, args)
    reference = (wall, cpu)
    ws = workspace(name + "-killed")
    run(ws, ["run", "mnist.fetch"]) if "mnist" in name else None
    total_wall, total_cpu, made = 0.0, 0.0, 0
    for seconds in kills:
        w, c, killed = run(ws, args, kill_after=seconds)
        total_wall, total_cpu, made = total_wall + w, total_cpu + c, made + killed
    w, c, _ = run(ws, args)
    total_wall, total_cpu = total_wall + w, total_cpu + c
    resumed = open(os.path.join(ws, "log.txt")).read().count("[resumed]")
    objects = sum(len(files) for _, _, files in os.walk(os.path.join(ws, "cache", "objects")))
    return reference, (total_wall, total_cpu), made, resumed, objects


def checkpoint_lines(name, args):
    ws = workspace(name)
    if "mnist" in name or "params" in name:
        run(ws, ["run", "mnist.fetch"])
    run(ws, args)
    return [line.strip() for line in open(os.path.join(ws, "log.txt")) if line.startswith("[checkpoint]")]


def main():
    os.makedirs(OUT, exist_ok=True)
    every = re.search(r"checkpoint_every_s = (\S+)", open(os.path.join(ROOT, "pipeline.toml")).read()).group(1)
    print("checkpoints off (before)\n" if WITHOUT else f"checkpoint_every_s = {every} (pipeline.toml)\n")
    off = ["-s", "pipeline.checkpoint_every_s=0"] if WITHOUT else []
    print("experiment                     kills  resumed  uninterrupted wall/CPU s   killed+resumed wall/CPU s   lost CPU s per kill")
    for name, args, kills in [
        ("optimisation", ["run", "min_ratio", "weights_pca", "grad_norm", "-j", "2"], [2, 5, 9, 14, 21, 30]),
        ("mnist-cnn1", ["run", "mnist_cnn.train[model=cnn1", "-j", "1"], [20, 45, 70]),
    ]:
        (w0, c0), (w1, c1), made, resumed, _ = kill_sequence(name, args + off, kills)
        lost = (c1 - c0) / max(made, 1)
        print(f"{name:<30} {made:>5}  {resumed:>7}  {w0:>10.1f} / {c0:<10.1f}   {w1:>12.1f} / {c1:<12.1f}  {lost:>10.1f}")
    if WITHOUT:
        return
    print()
    for name, args in [
        ("params-952k", ["run", "params_generalization.train[hidden=800x400", "-j", "1"]),
        ("min-ratio-100", ["run", "min_ratio", "-j", "1"]),
    ]:
        for line in checkpoint_lines(name, args):
            print(line)


if __name__ == "__main__":
    main()
