"""Engine overhead: the same experiment on a plain torch loop (the floor) and on each engine.

digits, mlp, 100 clients all participating, 1 local epoch, 10 rounds, FedAvg, no attack.
Each engine runs as a fresh ``python -m fedpoison`` process, so start-up (process start to
the first round: imports, Hydra, data, Ray) is measured too. Warm rounds = rounds 2..10 of
every repeat; with ``--repeats N`` the floor and the engines alternate N times. Each row gives
the median warm round and the best one: other load on a shared machine only ever adds time,
and it moves single rounds by up to 3× here. Steadier still is the paired ratio printed
under the table: inline run in this process, each of its rounds followed by a floor round.

Usage::

    python benchmarks/engine_overhead.py [--rounds 10] [--engines inline,ray,flower] [--repeats 5]
    python benchmarks/engine_overhead.py --engines inline,vectorized --model logreg --repeats 3
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

from fedpoison.federation import FederationSpec, load_federation
from fedpoison.seeding import TRAINING, torch_generator
from fedpoison.training.local import LocalTraining, local_train

COMMON = [
    "dataset=digits",
    "partition=iid",
    "federation.num_clients=100",
    "attack=none",
    "defense=fedavg",
    "defense.weighted=true",
    "threat.num_malicious=0",
    "training.local_epochs=1",
    "progress=false",
]


class Floor:
    """A single-process loop doing the identical local training + FedAvg, one round per call
    (one torch thread, like ``engine=inline``'s default and each Ray worker)."""

    def __init__(self, model: str = "mlp") -> None:
        spec = FederationSpec(
            dataset={"_target_": "fedpoison.data.digits.load_digits"},
            partition={"_target_": "fedpoison.data.partition.iid", "_partial_": True},
            model={"_target_": f"fedpoison.models.simple.{model}", "_partial_": True},
            num_clients=100,
            seed=0,
        )
        self.fed = load_federation(spec)
        self.model = self.fed.new_model()
        self.global_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.procedure = LocalTraining()
        self.server_round = 0

    def round(self) -> float:
        """Run the next round; its seconds."""
        torch.set_num_threads(1)
        self.server_round += 1
        t0 = time.perf_counter()
        total = {k: torch.zeros_like(v) for k, v in self.global_state.items()}
        count = 0
        for pid in range(100):
            self.model.load_state_dict(self.global_state)
            x, y = self.fed.client_data(pid)
            gen = torch_generator(0, TRAINING, self.server_round, pid)
            local_train(self.model, x, y, self.procedure, gen, torch.device("cpu"))
            for k, v in self.model.state_dict().items():
                total[k] += v * len(y)
            count += len(y)
        self.global_state = {k: v / count for k, v in total.items()}
        return time.perf_counter() - t0


def floor(rounds: int, model: str = "mlp") -> list[float]:
    """Seconds per round of ``rounds`` rounds of a fresh :class:`Floor`."""
    loop = Floor(model)
    return [loop.round() for _ in range(rounds)]


def round_seconds(row: dict) -> float:
    """A results row's round time: training, aggregation and evaluation."""
    return row["train_s"] + row["aggregate_s"] + row["eval_s"]


def paired_inline(rounds: int, model: str = "mlp") -> list[float]:
    """Per round, ``engine=inline``'s round time over a floor round run right after it in the
    same process: both see the same moment's machine load, so the ratio is steady where
    separate runs are not."""
    from hydra import compose, initialize_config_module

    from fedpoison.execute import execute
    from fedpoison.run import prepare
    from fedpoison.strategies.record import RoundRecord

    with initialize_config_module(config_module="fedpoison.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[*COMMON, f"model={model}", "engine=inline", f"num_rounds={rounds}"],
        )
    loop = Floor(model)
    ratios: list[float] = []

    def after_round(record: RoundRecord) -> None:
        ratios.append(round_seconds(record.to_dict()) / loop.round())

    with tempfile.TemporaryDirectory() as out:
        execute(prepare(cfg), Path(out), on_round=after_round)
    return ratios[1:]


def engine_run(
    engine: str, rounds: int, extra: list[str], model: str = "mlp"
) -> tuple[list[float], float, float]:
    """(seconds per round, start-up seconds, final accuracy) of one CLI run."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "fedpoison",
            *COMMON,
            f"model={model}",
            f"engine={engine}",
            f"num_rounds={rounds}",
            f"hydra.run.dir={out}",
            *extra,
        ]
        t0 = time.perf_counter()
        subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wall = time.perf_counter() - t0
        results = json.loads((Path(out) / "results.json").read_text())
    per_round = [round_seconds(r) for r in results["rounds"]]
    startup = wall - sum(per_round)  # process start to first round, plus the (short) teardown
    return per_round, startup, results["final"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--engines", default="inline,ray,flower")
    parser.add_argument("--model", default="mlp", help="mlp or logreg (the floor trains it too)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternate floor and engines this many times"
    )
    args = parser.parse_args()
    print(
        f"# engine overhead — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, "
        f"torch {torch.__version__}, {args.rounds} rounds, 100 clients × 1 epoch, "
        f"digits/{args.model}, "
        f"warm rounds of {args.repeats} alternating repeats"
    )
    extras = {"ray": ["engine.num_workers=2"], "flower": ["engine.num_cpus_per_client=1"]}
    engines = args.engines.split(",")
    warm: dict[str, list[float]] = {name: [] for name in ["floor", *engines]}
    startups: dict[str, list[float]] = {name: [] for name in engines}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):  # alternate, so that a noisy minute hits every runner alike
        warm["floor"] += floor(args.rounds, args.model)[1:]
        for engine in engines:
            per_round, startup, accuracy[engine] = engine_run(
                engine, args.rounds, extras.get(engine, []), args.model
            )
            warm[engine] += per_round[1:]
            startups[engine].append(startup)
    paired = (
        paired_inline(max(args.rounds, 2) * args.repeats, args.model) if "inline" in engines else []
    )
    median = {name: statistics.median(times) for name, times in warm.items()}
    best = {name: min(times) for name, times in warm.items()}
    print(
        f"| {'runner':<26} | {'median s/round':>14} | {'× floor':>8} "
        f"| {'best s/round':>12} | {'× floor':>8} "
        f"| {'start-up s':>10} | {'final acc':>9} |"
    )
    print(f"|{'-' * 28}|{'-' * 16}|{'-' * 10}|{'-' * 14}|{'-' * 10}|{'-' * 12}|{'-' * 11}|")
    for name in warm:
        label = "floor (plain torch loop)" if name == "floor" else f"engine={name}"
        startup = statistics.median(startups[name]) if name in startups else float("nan")
        print(
            f"| {label:<26} | {median[name]:>14.4f} | {median[name] / median['floor']:>8.2f} "
            f"| {best[name]:>12.4f} | {best[name] / best['floor']:>8.2f} | {startup:>10.2f} "
            f"| {accuracy.get(name, float('nan')):>9.4f} |"
        )
    if paired:
        q = statistics.quantiles(paired, n=4)
        print(
            "\ninline / floor, paired round by round in one process: "
            f"median {statistics.median(paired):.2f}, "
            f"quartiles {q[0]:.2f}–{q[2]:.2f} ({len(paired)} rounds)"
        )
    if "inline" in warm and "vectorized" in warm:
        print(
            f"\nvectorized is {median['inline'] / median['vectorized']:.1f}× (median) and "
            f"{best['inline'] / best['vectorized']:.1f}× (best) faster per warm round than inline"
        )
    if "inline" in warm and "flower" in warm:
        print(
            f"\ninline is {median['flower'] / median['inline']:.1f}× (median) and "
            f"{best['flower'] / best['inline']:.1f}× (best) faster per warm round than flower"
        )


if __name__ == "__main__":
    main()
