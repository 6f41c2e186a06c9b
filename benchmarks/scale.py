"""Scale: seconds per round and peak memory vs population and vs clients per round.

Three tables, every configuration a fresh ``python -m fedpoison`` process (MNIST, FedAvg, no
attack; warm round = median of rounds 2..R of train + aggregate + eval time):

1. population 100 / 1,000 / 10,000 registered clients, 100 sampled per round (inline, ``mlp``,
   2 local steps of batch 16 so that a client's work does not depend on its partition size):
   the per-round cost must not grow with the population (10k within 1.2× of 1k) and peak
   memory must stay under 4 GiB;
2. clients per round 10 / 100 / 1,000 (population 10,000, same local work) for ``inline`` and
   ``ray`` with 1 and 2 workers;
3. ``inline`` vs ``ray`` with 2 workers on the MNIST CNN (``model=cnn``), 100 clients of 600
   examples each, 1 local epoch: the speed-up of using both cores.

Peak memory is the largest summed RSS of the run's whole process tree (Ray's raylet and
workers included), sampled every 0.1 s from /proc. The hardware is printed with the tables,
and ``--plot FILE`` writes a PNG of tables 1 and 2.

Usage::

    python benchmarks/scale.py [--rounds 4] [--plot scale.png] [--only population,per_round,cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

COMMON = [
    "dataset=mnist",
    "partition=iid",
    "attack=none",
    "defense=fedavg",
    "threat.num_malicious=0",
    "training.lr=0.05",
    "progress=false",
    "checkpoint_every=0",
]
FIXED_WORK = ["model=mlp", "training.local_steps=2"]  # the same work per client at any population


@dataclass(frozen=True)
class Measurement:
    """One configuration's warm seconds per round, peak tree RSS (MiB) and final accuracy."""

    warm_s: float
    peak_mib: float
    accuracy: float


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mib(root: int) -> float:
    """Summed resident memory of ``root`` and all its descendants, in MiB."""
    tree, stack, total = _children(), [root], 0
    while stack:
        pid = stack.pop()
        stack.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024.0


def measure(overrides: list[str], rounds: int) -> Measurement:
    """Run fedpoison with ``overrides`` in a fresh process; sample its tree's memory meanwhile."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "fedpoison",
            *COMMON,
            *overrides,
            f"num_rounds={rounds}",
            f"hydra.run.dir={out}",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0.0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_mib(proc.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = proc.communicate()
        sampler.join()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{stdout}\n{stderr}")
        results = json.loads((Path(out) / "results.json").read_text())
    per_round = [r["train_s"] + r["aggregate_s"] + r["eval_s"] for r in results["rounds"]]
    return Measurement(statistics.median(per_round[1:]), peak[0], results["final"]["accuracy"])


def hardware() -> str:
    """CPU model, cores, memory and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB RAM, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


ENGINES = {
    "inline": ["engine=inline"],
    "ray ×1": ["engine=ray", "engine.num_workers=1"],
    "ray ×2": ["engine=ray", "engine.num_workers=2"],
}


def population_table(rounds: int) -> dict[int, Measurement]:
    results = {}
    for population in (100, 1_000, 10_000):
        results[population] = measure(
            [
                *FIXED_WORK,
                f"federation.num_clients={population}",
                "federation.clients_per_round=100",
            ],
            rounds,
        )
    base = results[1_000].warm_s
    print("## Population (100 clients per round, inline, MNIST mlp, 2 local steps)\n")
    _table(
        ["registered clients", "s / round", "× 1,000", "peak RSS (MiB)", "final acc"],
        [
            [
                f"{p:,}",
                f"{m.warm_s:.3f}",
                f"{m.warm_s / base:.2f}",
                f"{m.peak_mib:.0f}",
                f"{m.accuracy:.4f}",
            ]
            for p, m in results.items()
        ],
    )
    return results


def per_round_table(rounds: int) -> dict[tuple[str, int], Measurement]:
    results = {}
    for engine, overrides in ENGINES.items():
        for per_round in (10, 100, 1_000):
            results[engine, per_round] = measure(
                [
                    *FIXED_WORK,
                    "federation.num_clients=10000",
                    f"federation.clients_per_round={per_round}",
                    *overrides,
                ],
                rounds,
            )
    print("## Clients per round (population 10,000, MNIST mlp, 2 local steps)\n")
    _table(
        ["engine", "clients / round", "s / round", "ms / client", "peak RSS (MiB)"],
        [
            [engine, f"{k:,}", f"{m.warm_s:.3f}", f"{1000 * m.warm_s / k:.2f}", f"{m.peak_mib:.0f}"]
            for (engine, k), m in results.items()
        ],
    )
    return results


def cnn_table(rounds: int) -> None:
    common = [
        "model=cnn",
        "training.local_epochs=1",
        "federation.num_clients=100",
        "federation.clients_per_round=100",
    ]
    inline = measure([*common, *ENGINES["inline"]], rounds)
    ray = measure([*common, *ENGINES["ray ×2"]], rounds)
    print("## inline vs ray ×2 (MNIST cnn, 100 clients per round, 1 local epoch of 600 examples)\n")
    _table(
        ["engine", "s / round", "peak RSS (MiB)", "final acc"],
        [
            [name, f"{m.warm_s:.3f}", f"{m.peak_mib:.0f}", f"{m.accuracy:.4f}"]
            for name, m in (("inline", inline), ("ray ×2", ray))
        ],
    )
    print(f"ray with 2 workers is {inline.warm_s / ray.warm_s:.2f}× faster per round than inline\n")


def plot(
    population: dict[int, Measurement], per_round: dict[tuple[str, int], Measurement], path: Path
) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    xs = list(population)
    left.plot(xs, [population[p].warm_s for p in xs], marker="o", label="s / round")
    left.set(
        xscale="log",
        xlabel="registered clients (100 per round)",
        ylabel="s / round",
        title="population",
    )
    twin = left.twinx()
    twin.plot(
        xs, [population[p].peak_mib for p in xs], marker="s", color="tab:red", label="peak RSS"
    )
    twin.set_ylabel("peak RSS (MiB)")
    for engine in ENGINES:
        ks = sorted(k for e, k in per_round if e == engine)
        right.plot(ks, [per_round[engine, k].warm_s for k in ks], marker="o", label=engine)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="clients per round (population 10,000)",
        ylabel="s / round",
        title="clients per round",
    )
    right.legend()
    fig.suptitle(hardware(), fontsize=8)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--plot", type=Path, default=None, help="PNG of the population and per-round tables"
    )
    parser.add_argument("--only", default="population,per_round,cnn")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"# fedpoison scale — {hardware()}; {args.rounds} rounds per configuration\n")
    population = population_table(args.rounds) if "population" in parts else {}
    per_round = per_round_table(args.rounds) if "per_round" in parts else {}
    if "cnn" in parts:
        cnn_table(args.rounds)
    if args.plot is not None and population and per_round:
        plot(population, per_round, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
