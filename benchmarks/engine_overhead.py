"""Engine overhead: the same experiment on a plain torch loop (the floor) and on each engine.

digits, mlp, 100 clients all participating, 1 local epoch, 10 rounds, FedAvg, no attack.
Each engine runs as a fresh ``python -m fedpoison`` process, so start-up (process start to
the first round: imports, Hydra, data, Ray) is measured too. Warm rounds = rounds 2..10 of
every repeat; with ``--repeats N`` the floor and the engines alternate N times. Each row gives
the median warm round and the best one: other load on a shared machine only ever adds time,
and it moves single rounds by up to 3× here, so the best rounds give the steadiest ratio.
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
          f"warm rounds of {args.repeats} alternating repeats")
    extras = {"ray": ["engine.num_workers=2"], "flower": ["engine.num_cpus_per_client=1"]}
    engines = args.engines.split(",")
    warm: dict[str, list[float]] = {name: [] for name in ["floor", *engines]}
    startups: dict[str, list[float]] = {name: [] for name in engines}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):  # alternate, so that a noisy minute hits every runner alike
        warm["floor"] += floor(args.rounds)[1:]
        for engine in engines:
            per_round, startup, accuracy[engine] = engine_run(engine, args.rounds, extras.get(engine, []))
            warm[engine] += per_round[1:]
            startups[engine].append(startup)
    median = {name: statistics.median(times) for name, times in warm.items()}
    best = {name: min(times) for name, times in warm.items()}
    print(f"| {'runner':<26} | {'median s/round':>14} | {'× floor':>8} | {'best s/round':>12} | {'× floor':>8} "
          f"| {'start-up s':>10} | {'final acc':>9} |")
    print(f"|{'-' * 28}|{'-' * 16}|{'-' * 10}|{'-' * 14}|{'-' * 10}|{'-' * 12}|{'-' * 11}|")
    for name in warm:
        label = "floor (plain torch loop)" if name == "floor" else f"engine={name}"
        startup = statistics.median(startups[name]) if name in startups else float("nan")
        print(f"| {label:<26} | {median[name]:>14.4f} | {median[name] / median['floor']:>8.2f} "
              f"| {best[name]:>12.4f} | {best[name] / best['floor']:>8.2f} | {startup:>10.2f} "
              f"| {accuracy.get(name, float('nan')):>9.4f} |")
    if "inline" in warm and "flower" in warm:
        print(f"\ninline is {median['flower'] / median['inline']:.1f}× (median) and "
              f"{best['flower'] / best['inline']:.1f}× (best) faster per warm round than flower")


if __name__ == "__main__":
    main()
