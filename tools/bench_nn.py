#!/usr/bin/python3
"""PyTorch twin of `ensfold bench train-step`, run alternately with ensfold.

The reference workload (issue 3, docs/performance.md): G 8->H->H->H->2,
D 6->H->H->H->1 (2 coordinates + 4 topology probabilities), LeakyReLU(0.2)
after every hidden layer, BCE with logits, Adam(lr 1e-4, betas 0.5/0.999),
per step one D update on a real and a fake batch, then one G update through
D; fp32, one thread. The PyTorch side is the standard DCGAN-tutorial loop.

Both sides run under the same environment: this script sets
OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1 before importing torch,
passes its environment on to ensfold unchanged, and leaves OPENBLAS_CORETYPE
and the like as it found them. Runs alternate A B A B ... (A = PyTorch,
B = ensfold) so that drifts in machine load hit both; each pair gives a ratio
ensfold/PyTorch of steps per second, and the script prints the median, min
and max of the ratios.

usage: tools/bench_nn.py [--batch B] [--hidden H] [--steps S] [--warmup W]
                         [--pairs N] [--ensfold PATH]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import torch  # noqa: E402  (after the thread settings above)

LATENT, DATA_DIM, GEN_DIM, N_POOL = 8, 6, 2, 16


def mlp(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.LeakyReLU(0.2))
    return torch.nn.Sequential(*layers)


class TorchGan:
    def __init__(self, batch, hidden, seed=1):
        torch.manual_seed(seed)
        self.B = batch
        self.G = mlp([LATENT, hidden, hidden, hidden, GEN_DIM])
        self.D = mlp([DATA_DIM, hidden, hidden, hidden, 1])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=1e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=1e-4, betas=(0.5, 0.999))
        self.bce = torch.nn.BCEWithLogitsLoss()
        # the same kind of real events as ensfold's benchmark: a ring and a
        # probability vector over 4 topologies, N_POOL batches cycled through
        n = N_POOL * batch
        phi = 2 * torch.pi * torch.rand(n)
        rad = 1 + 0.1 * torch.randn(n)
        p = torch.softmax(torch.randn(n, 4), dim=1)
        self.pool = torch.cat([(rad * torch.cos(phi))[:, None],
                               (rad * torch.sin(phi))[:, None], p], dim=1).contiguous()
        self.ones = torch.ones(batch, 1)
        self.zeros = torch.zeros(batch, 1)
        self.step_no = 0

    def step(self):
        B = self.B
        k = self.step_no % N_POOL
        self.step_no += 1
        real = self.pool[k * B:(k + 1) * B]
        cond = real[:, 2:]
        z = torch.randn(B, LATENT)
        fake = self.G(z)
        # D update: real batch and detached fake batch
        self.opt_d.zero_grad()
        loss_d = (self.bce(self.D(real), self.ones) +
                  self.bce(self.D(torch.cat([fake.detach(), cond], dim=1)), self.zeros))
        loss_d.backward()
        self.opt_d.step()
        # G update through D, non-saturating loss
        self.opt_g.zero_grad()
        loss_g = self.bce(self.D(torch.cat([fake, cond], dim=1)), self.ones)
        loss_g.backward()
        self.opt_g.step()
        return loss_d.item(), loss_g.item()


def run_torch(gan, steps, warmup):
    for _ in range(warmup):
        gan.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        gan.step()
    return steps / (time.perf_counter() - t0)


def run_ensfold(exe, batch, hidden, steps, warmup):
    out = subprocess.run([exe, "bench", "train-step", "--batch", str(batch), "--hidden",
                          str(hidden), "--steps", str(steps), "--warmup", str(warmup)],
                         check=True, capture_output=True, text=True).stdout
    vals = dict(re.findall(r"^(\w+): (\S+)", out, re.M))
    return float(vals["steps_per_s"]), float(vals["non_gemm_fraction"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=5)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--ensfold", default=os.environ.get("ENSFOLD_EXE",
                                                        os.path.join(root, "build", "ensfold")))
    a = ap.parse_args()
    torch.set_num_threads(1)
    gan = TorchGan(a.batch, a.hidden)
    print(f"workload: train-step batch {a.batch} hidden {a.hidden} steps {a.steps} "
          f"warmup {a.warmup} pairs {a.pairs}")
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}; ensfold {a.ensfold}")
    print(f"env: " + " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ)
                              if k.startswith(("OPENBLAS", "OMP_", "MKL_"))))
    ratios, fracs = [], []
    print(f"{'pair':>4} {'torch steps/s':>14} {'ensfold steps/s':>16} {'ratio':>7} "
          f"{'non-gemm':>9}")
    for i in range(a.pairs):
        t = run_torch(gan, a.steps, a.warmup)
        e, frac = run_ensfold(a.ensfold, a.batch, a.hidden, a.steps, a.warmup)
        ratios.append(e / t)
        fracs.append(frac)
        print(f"{i + 1:>4} {t:>14.2f} {e:>16.2f} {e / t:>7.3f} {frac:>9.4f}", flush=True)
    print(f"ratio_median: {statistics.median(ratios):.3f}")
    print(f"ratio_min: {min(ratios):.3f}")
    print(f"ratio_max: {max(ratios):.3f}")
    print(f"non_gemm_fraction_median: {statistics.median(fracs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
