"""Engine overhead: the same experiment on a plain torch loop (the floor) and on each engine.

digits, mlp, 100 clients all participating, 1 local epoch, 10 rounds, FedAvg, no attack.
Each engine runs as a fresh ``python -m fedpoison`` process, so start-up (process start to
the first round: imports, Hydra, data, Ray) is measured too. Warm round = median of rounds
2..10; with ``--repeats N`` the floor and the engines alternate N times and each row is the
median over repeats (this machine's noise moves single runs by ±50 %).
Usage: ``python benchmarks/engine_overhead.py [--rounds 10] [--engines inline,ray,flower] [--repeats 5]``.
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
import time
from pathlib import Path

import torch

from fedpoison.clients.training import LocalTraining, local_train
from fedpoison.federation import FederationSpec, load_federation
from fedpoison.seeding import TRAINING, torch_generator

COMMON = [
    "dataset=digits", "model=mlp", "partition=iid", "federation.num_clients=100", "attack=none",
    "defense=fedavg", "defense.weighted=true", "threat.num_malicious=0", "training.local_epochs=1", "progress=false",
]


def floor(rounds: int) -> list[float]:
    """Seconds per round of a single-process loop doing the identical local training + FedAvg
    (one torch thread, like ``engine=inline``'s default and each Ray worker)."""
    torch.set_num_threads(1)
    spec = FederationSpec(
        dataset={"_target_": "fedpoison.data.digits.load_digits"},
        partition={"_target_": "fedpoison.data.partition.iid", "_partial_": True},
        model={"_target_": "fedpoison.models.simple.mlp", "_partial_": True},
        num_clients=100,
        seed=0,
    )
    fed = load_federation(spec)
    model = fed.new_model()
    global_state = {k: v.clone() for k, v in model.state_dict().items()}
    procedure = LocalTraining()
    times = []
    for server_round in range(1, rounds + 1):
        t0 = time.perf_counter()
        total = {k: torch.zeros_like(v) for k, v in global_state.items()}
        count = 0
        for pid in range(100):
            model.load_state_dict(global_state)
            x, y = fed.client_data(pid)
            local_train(model, x, y, procedure, torch_generator(0, TRAINING, server_round, pid), torch.device("cpu"))
            for k, v in model.state_dict().items():
                total[k] += v * len(y)
            count += len(y)
        global_state = {k: v / count for k, v in total.items()}
        times.append(time.perf_counter() - t0)
    return times


def engine_run(engine: str, rounds: int, extra: list[str]) -> tuple[list[float], float, float]:
    """(seconds per round, start-up seconds, final accuracy) of one CLI run."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "fedpoison", *COMMON, f"engine={engine}", f"num_rounds={rounds}",
               f"hydra.run.dir={out}", *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - t0
        results = json.loads((Path(out) / "results.json").read_text())
    per_round = [r["train_s"] + r["aggregate_s"] + r["eval_s"] for r in results["rounds"]]
    startup = wall - sum(per_round)  # process start to first round, plus the (short) teardown
    return per_round, startup, results["final"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--engines", default="inline,ray,flower")
    parser.add_argument("--repeats", type=int, default=1, help="alternate floor and engines this many times")
    args = parser.parse_args()
    print(f"# engine overhead — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {args.rounds} rounds, 100 clients × 1 epoch, digits/mlp, "
          f"median of {args.repeats} alternating repeats")
    extras = {"ray": ["engine.num_workers=2"], "flower": ["engine.num_cpus_per_client=1"]}
    engines = args.engines.split(",")
    warm: dict[str, list[float]] = {name: [] for name in ["floor", *engines]}
    startups: dict[str, list[float]] = {name: [] for name in engines}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):  # alternate, so that a noisy minute hits every runner alike
        warm["floor"].append(statistics.median(floor(args.rounds)[1:]))
        for engine in engines:
            per_round, startup, accuracy[engine] = engine_run(engine, args.rounds, extras.get(engine, []))
            warm[engine].append(statistics.median(per_round[1:]))
            startups[engine].append(startup)
    base_warm = statistics.median(warm["floor"])
    rows = [("floor (plain torch loop)", base_warm, float("nan"), float("nan"))]
    rows += [(f"engine={e}", statistics.median(warm[e]), statistics.median(startups[e]), accuracy[e]) for e in engines]
    print(f"| {'runner':<26} | {'warm s/round':>12} | {'× floor':>8} | {'start-up s':>10} | {'final acc':>9} |")
    print(f"|{'-' * 28}|{'-' * 14}|{'-' * 10}|{'-' * 12}|{'-' * 11}|")
    for name, warm, startup, acc in rows:
        print(f"| {name:<26} | {warm:>12.4f} | {warm / base_warm:>8.2f} | {startup:>10.2f} | {acc:>9.4f} |")
    by_name = {r[0]: r[1] for r in rows}
    if "engine=inline" in by_name and "engine=flower" in by_name:
        print(f"\ninline is {by_name['engine=flower'] / by_name['engine=inline']:.1f}× faster per warm round than flower")


if __name__ == "__main__":
    main()
