"""GPU check, one prepared script for a CUDA machine (``python benchmarks/gpu.py``).

1. Every registered aggregation rule on a (100, 10⁶) float32 CUDA matrix: median seconds of
   ``--repeats`` calls (after a warm-up, with ``torch.cuda.synchronize``), the ratio to one
   ``X @ X.T`` on the same matrix, and the result checked finite and on the GPU; a rule whose
   ``check`` refuses n = 100, f = 20 (MDA and SMEA: C(100, 20) subsets) is listed with its reason.
2. Training: MNIST CNN (digits if MNIST is not installed), 100 clients per round, ``device=cuda``
   with ``engine=inline`` and with ``engine=ray`` (4 workers sharing the GPU,
   ``num_gpus_per_worker=0.25``), against ``device=cpu`` inline — seconds per warm round.

Without CUDA it says so and exits 0, so it can stay in the repository's scripts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed(fn, repeats: int, device: str) -> float:  # noqa: ANN001
    """Median seconds of ``fn()`` (one warm-up call; CUDA work synchronised)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


DRY_RUN_PARAMS = {"deepsight": {"samples": 256}}
"""Cheaper settings for the CPU script check (DeepSight runs 3 × 20 000 forwards per client)."""


def aggregators(repeats: int, device: str, d: int, params: dict | None = None) -> None:
    from fedpoison.aggregators import AGGREGATORS
    from fedpoison.aggregators.base import RoundContext
    from fedpoison.aggregators.flat_model import linear_model

    n, f = 100, 20
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, device=device, generator=gen)
    matmul = timed(lambda: x @ x.T, repeats, device)
    print(
        f"## Aggregators on {device}, n={n}, d={d:,}, f={f}; one X @ X.T = {matmul * 1e3:.2f} ms\n"
    )
    print("| rule | ms | × matmul |\n|---|---|---|")
    for name in sorted(AGGREGATORS.names()):
        rule = AGGREGATORS.get(name)(**(params or {}).get(name, {}))
        try:
            rule.check(n, f)
        except ValueError as exc:  # e.g. MDA/SMEA: C(100, 20) subsets exceed their budget
            print(f"| {name} | refused: {str(exc).split(': ', 1)[1]} | – |")
            continue
        ctx = RoundContext(
            f=f,
            client_ids=tuple(range(n)),
            num_examples=torch.ones(n, device=device, dtype=torch.float64),
            generator=torch.Generator(device=device).manual_seed(1),
            server_update=x.mean(dim=0),
            global_weights=torch.zeros(d, device=device),
            model=linear_model(d),  # d parameters (DeepSight runs the clients' models)
        )
        result = rule.aggregate(x, ctx)
        assert result.aggregate.device == x.device and bool(
            torch.isfinite(result.aggregate).all()
        ), name
        seconds = timed(lambda rule=rule, ctx=ctx: rule.aggregate(x, ctx), repeats, device)
        print(f"| {name} | {seconds * 1e3:.2f} | {seconds / matmul:.2f} |")
    print()


def training(rounds: int) -> None:
    from scale import measure

    dataset = "dataset=mnist"
    try:
        from fedpoison.data.mnist import load_mnist

        load_mnist()
    except Exception as exc:  # noqa: BLE001 — any missing-data error: fall back to the bundled digits
        print(f"(MNIST unavailable: {exc}; using digits)")
        dataset = "dataset=digits"
    common = [
        dataset,
        "model=cnn",
        "training.local_epochs=1",
        "federation.num_clients=100",
        "federation.clients_per_round=100",
    ]
    runs = {
        "cpu inline": ["device=cpu", "engine=inline"],
        "cuda inline": ["device=cuda", "engine=inline"],
        "cuda ray ×4 (0.25 GPU each)": [
            "device=cuda",
            "engine=ray",
            "engine.num_workers=4",
            "engine.num_gpus_per_worker=0.25",
        ],
    }
    print("## Training, CNN, 100 clients per round\n")
    print("| run | s / round | peak RSS (MiB) | final acc |\n|---|---|---|---|")
    for name, overrides in runs.items():
        m = measure([*common, *overrides], rounds)
        print(f"| {name} | {m.warm_s:.3f} | {m.peak_mib:.0f} | {m.accuracy:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="aggregators only, on the CPU at d=10⁴ (script check)",
    )
    args = parser.parse_args()
    if args.dry_run:
        aggregators(1, "cpu", 10_000, DRY_RUN_PARAMS)
        return
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (the CPU tests cover the same code paths)")
        return
    print(f"# fedpoison on {torch.cuda.get_device_name()} — torch {torch.__version__}\n")
    aggregators(args.repeats, "cuda", 1_000_000)
    training(args.rounds)


if __name__ == "__main__":
    main()
