"""Training speed and quality: our numpy trainer against PyTorch (CPU), epochs interleaved in one run.

For the 784-256-128-10 ReLU MLP and the seed preset (784->10 with ReLU on the logits), both with
batch 128 and Adam 1e-3 (for the MLP decayed by 0.8 per epoch on both sides, the trainer's
default) on the full MNIST training set, this prints the median epoch time of each,
their ratio, and the test accuracy of each after the epochs run; then the peak memory (max RSS) of
a full ``python -m trainer`` run in a subprocess.

    .venv/bin/pip install torch==2.13.0    # bench-only (a CPU wheel); `make bench` does this
    .venv/bin/python bench/train_bench.py  # about 1-2 minutes on 2 idle cores
    .venv/bin/python bench/train_bench.py --only seed  # one model's row (and the memory line)

Both sides use the same thread count (``--threads``, default 2) and the same initialisation for
the seed model (Glorot-uniform, zero bias: PyTorch's default init leaves more logits dead). Runs of
the same job vary by up to 2x on a shared machine: compare the two columns of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from contracts import Architecture, LayerSpec, Preprocessing, TrainingConfig
from contracts.artifact import Activation
from trainer import MLP, load_mnist
from trainer.batches import Batches
from trainer.threads import blas_threads
from trainer.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
Layers = tuple[tuple[int, Activation], ...]
MODELS: dict[str, tuple[Layers, float]] = {  # name: (layers, per-epoch learning-rate decay: the trainer's defaults)
    "mlp 784-256-128-10": (((256, "relu"), (128, "relu"), (10, "linear")), 0.8),
    "seed preset 784-10": (((10, "relu"),), 1.0),
}
SHORT_NAMES = {"mlp": "mlp 784-256-128-10", "seed": "seed preset 784-10"}  # for --only


class Ours:
    def __init__(self, layers: Layers, lr_decay: float, x: np.ndarray, y: np.ndarray, threads: int) -> None:
        arch = Architecture(input_shape=(28, 28), layers=tuple(LayerSpec(units=u, activation=a) for u, a in layers))
        init = "glorot" if len(layers) == 1 else "auto"
        config = TrainingConfig(batch_size=128, lr=1e-3, lr_decay=lr_decay)
        self.trainer = Trainer(MLP(arch, init=init), config, Preprocessing(), threads=threads)
        self.batches = Batches(x, y, 128, Preprocessing())
        self.epoch = 0

    def train_epoch(self) -> None:
        self.epoch += 1
        self.trainer.train_epoch(self.batches, self.epoch)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return self.trainer.evaluate(x, y)[1]


class Torch:
    """The usual manual PyTorch loop: tensors in memory, a randperm per epoch, index each batch."""

    def __init__(self, layers: Layers, lr_decay: float, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        import torch

        torch.manual_seed(seed)
        modules: list[torch.nn.Module] = [torch.nn.Flatten()]
        fan_in = 784
        for units, act in layers:
            linear = torch.nn.Linear(fan_in, units)
            if len(layers) == 1:  # the seed model: same init as ours (see the module docstring)
                torch.nn.init.xavier_uniform_(linear.weight)
                torch.nn.init.zeros_(linear.bias)
            modules.append(linear)
            if act == "relu":
                modules.append(torch.nn.ReLU())
            fan_in = units
        self.torch = torch
        self.model = torch.nn.Sequential(*modules)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.schedule = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=lr_decay)
        self.x = torch.from_numpy(x.astype(np.float32) / 255.0)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.loss = torch.nn.CrossEntropyLoss()

    def train_epoch(self) -> None:
        torch, n = self.torch, len(self.y)
        perm = torch.randperm(n)
        self.model.train()
        for i in range(0, n, 128):
            idx = perm[i : i + 128]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt.step()
        self.schedule.step()

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        torch = self.torch
        with torch.no_grad():
            logits = self.model(torch.from_numpy(x.astype(np.float32) / 255.0))
        return float((logits.argmax(1).numpy() == y).mean())


def compare(name: str, layers: Layers, lr_decay: float, epochs: int, threads: int) -> dict[str, float]:
    train, test = load_mnist("train"), load_mnist("test")
    ours = Ours(layers, lr_decay, train.x, train.y, threads)
    theirs = Torch(layers, lr_decay, train.x, train.y)
    times: dict[str, list[float]] = {"ours": [], "torch": []}
    # numpy's OpenBLAS threads as Trainer.fit would set them; torch keeps its own (MKL, OpenMP) pool
    with blas_threads(ours.trainer.blas_threads()):
        for _ in range(epochs):
            for label, runner in (("ours", ours), ("torch", theirs)):
                start = time.perf_counter()
                runner.train_epoch()
                times[label].append(time.perf_counter() - start)
        acc_ours, acc_torch = ours.accuracy(test.x, test.y), theirs.accuracy(test.x, test.y)
    med_ours, med_torch = statistics.median(times["ours"]), statistics.median(times["torch"])
    print(f"{name:<20} {med_ours:>9.3f} s {med_torch:>9.3f} s {med_ours / med_torch:>7.2f}x "
          f"{acc_ours:>9.2%} {acc_torch:>9.2%}   ({epochs} epochs)", flush=True)  # fmt: skip
    return {"ours_s": med_ours, "torch_s": med_torch, "ratio": med_ours / med_torch,
            "ours_accuracy": acc_ours, "torch_accuracy": acc_torch, "epochs": epochs}  # fmt: skip


_MEASURE = """
import sys
from trainer.__main__ import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
sys.exit(code)
"""


def peak_memory_mib(threads: int) -> float:
    """Peak RSS (VmHWM) of a full-MNIST trainer run (1 epoch: the peak is the data, not the epochs).

    Read inside the child from /proc: ``ru_maxrss`` survives exec on Linux and would include the
    pages this torch-sized process shared with the child between fork and exec.
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--epochs", "1", "--quiet", "--threads", str(threads), "--out", str(Path(tmp) / "m")]
        done = subprocess.run([sys.executable, "-c", _MEASURE, *args], check=True, cwd=ROOT, capture_output=True)
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per model and framework [10]")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads for numpy and torch [2]")
    parser.add_argument("--only", choices=sorted(SHORT_NAMES), help="run one model's row only [both]")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"numpy {np.__version__}, torch {torch.__version__}, {args.threads} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'model':<20} {'ours/epoch':>11} {'torch/epoch':>11} {'ratio':>8} {'ours acc':>9} {'torch acc':>9}")
    models = {SHORT_NAMES[args.only]: MODELS[SHORT_NAMES[args.only]]} if args.only else MODELS
    results: dict[str, object] = {name: compare(name, layers, decay, args.epochs, args.threads)
                                  for name, (layers, decay) in models.items()}  # fmt: skip
    peak = peak_memory_mib(args.threads)
    print(f"peak memory of a full-MNIST training run (VmHWM): {peak:.0f} MiB")
    results["peak_rss_mib"] = peak
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
