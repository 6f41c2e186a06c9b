"""Speed of fedpoison's aggregation rules against naive loops, Flower's numpy helpers and ByzFL.

    python benchmarks/aggregators.py [--quick] [--repeats R]

Data: float32 standard normal ``(n, d)`` from a fixed seed, f = n/5 assumed Byzantine, for
(n, d) ∈ {(20, 1e5), (100, 1e5), (100, 1e6)} (``--quick``: the first two). Each row is the
median wall time over the repeats, the ratio to fedpoison's time for the same rule, and the
largest absolute difference from fedpoison's output where the two definitions coincide.

- naive: loop transcriptions of the paper formulas (loops over client pairs or, for the
  coordinate-wise rules, over coordinates). Run at the smallest size only.
- flower: the module-level helpers behind ``flwr.serverapp.strategy`` Krum, MultiKrum,
  FedMedian, FedTrimmedAvg and Bulyan (``select_multikrum`` on RecordDicts — it deserialises
  the arrays itself — ``np.median``, ``trim_mean``, ``aggregate_n_closest_weights``), plus the
  legacy ``flwr.server.strategy.aggregate`` Krum/Bulyan (pairwise loop; smallest size only).
- byzfl: ByzFL's aggregators, when the package is installed.
- reference: one float32 ``X @ X.T``, ``numpy.median`` and a numpy sort-based trimmed mean.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import fedpoison.aggregators as agg
from fedpoison.aggregators._subsets import MAX_SUBSETS
from fedpoison.aggregators.base import RoundContext

SIZES = [(20, 100_000), (100, 100_000), (100, 1_000_000)]
SEED = 0
SLOW_S = 5.0  # a call slower than this is timed once (its warm-up call)


# ----------------------------------------------------------------------------- naive loops


def naive_krum_scores(x: np.ndarray, f: int) -> list[float]:
    n = len(x)
    scores = []
    for i in range(n):
        ds = sorted(float(((x[i] - x[j]) ** 2).sum(dtype=np.float64)) for j in range(n) if j != i)
        scores.append(sum(ds[: n - f - 2]))
    return scores


def naive_multi_krum(x: np.ndarray, f: int, m: int) -> np.ndarray:
    scores = naive_krum_scores(x, f)
    best = sorted(range(len(x)), key=lambda i: (scores[i], i))[:m]
    return sum(x[i].astype(np.float64) for i in best) / m


def naive_median(x: np.ndarray) -> np.ndarray:
    n = len(x)
    out = []
    for col in x.T.tolist():
        s = sorted(col)
        out.append(s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)
    return np.array(out)


def naive_trimmed_mean(x: np.ndarray, b: int) -> np.ndarray:
    return np.array(
        [sum(sorted(col)[b : len(col) - b]) / (len(col) - 2 * b) for col in x.T.tolist()]
    )


def naive_bulyan(x: np.ndarray, f: int) -> np.ndarray:
    n = len(x)
    theta, beta = n - 2 * f, n - 4 * f
    remaining, chosen = list(range(n)), []
    while len(chosen) < theta:
        sub = x[remaining]
        k = max(1, len(remaining) - f - 2)
        scores = []
        for i in range(len(sub)):
            ds = sorted(
                float(((sub[i] - sub[j]) ** 2).sum(dtype=np.float64))
                for j in range(len(sub))
                if j != i
            )
            scores.append(sum(ds[:k]))
        pick = remaining[min(range(len(scores)), key=lambda i: (scores[i], i))]
        chosen.append(pick)
        remaining.remove(pick)
    out = []
    for col in x[chosen].T.tolist():
        s = sorted(col)
        m = s[theta // 2] if theta % 2 else (s[theta // 2 - 1] + s[theta // 2]) / 2
        closest = sorted(col, key=lambda v: (abs(v - m), v))[:beta]
        out.append(sum(closest) / beta)
    return np.array(out)


def naive_geometric_median(x: np.ndarray, iters: int, nu: float) -> np.ndarray:
    z = np.zeros(x.shape[1])
    for _ in range(iters):
        betas = [1.0 / max(nu, float(np.linalg.norm(row - z))) for row in x]
        z = sum(b * row.astype(np.float64) for b, row in zip(betas, x, strict=True)) / sum(betas)
    return z


def naive_centered_clipping(x: np.ndarray, tau: float) -> np.ndarray:
    v = np.zeros(x.shape[1])
    step = np.zeros(x.shape[1])
    for row in x:
        diff = row - v
        norm = float(np.linalg.norm(diff))
        step += diff * (1.0 if norm == 0 else min(1.0, tau / norm)) / len(x)
    return v + step


def naive_fltrust(x: np.ndarray, g0: np.ndarray) -> np.ndarray:
    n0 = float(np.linalg.norm(g0))
    total, acc = 0.0, np.zeros(x.shape[1])
    for row in x:
        ni = float(np.linalg.norm(row))
        ts = max(0.0, float(row @ g0) / (ni * n0))
        total += ts
        acc += ts * (n0 / ni) * row
    return acc / total


def naive_meamed(x: np.ndarray, f: int) -> np.ndarray:
    n, out = len(x), []
    for col in x.T.tolist():
        s = sorted(col)
        m = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
        kept = sorted(range(n), key=lambda i: (abs(col[i] - m), i))[: n - f]
        out.append(sum(col[i] for i in kept) / (n - f))
    return np.array(out)


def naive_monna(x: np.ndarray, f: int, pivot: int) -> np.ndarray:
    dist = [
        -1.0 if i == pivot else float(np.linalg.norm(row - x[pivot])) for i, row in enumerate(x)
    ]
    kept = sorted(range(len(x)), key=lambda i: (dist[i], i))[: len(x) - f]
    return sum(x[i].astype(np.float64) for i in kept) / len(kept)


def naive_gram(x: np.ndarray) -> list[list[float]]:
    return [[float(a @ b.astype(np.float64)) for b in x] for a in x]


def naive_subset_mean(
    x: np.ndarray, f: int, score: Callable[[tuple[int, ...]], float]
) -> np.ndarray:
    """Mean of the first ``(n−f)``-subset (itertools order) of lowest ``score`` (strict <)."""
    best, low = None, float("inf")
    for subset in itertools.combinations(range(len(x)), len(x) - f):
        value = score(subset)
        if value < low:
            best, low = subset, value
    assert best is not None
    return sum(x[i].astype(np.float64) for i in best) / len(best)


def naive_mda(x: np.ndarray, f: int) -> np.ndarray:
    g = naive_gram(x)
    return naive_subset_mean(
        x,
        f,
        lambda s: max(g[i][i] + g[j][j] - 2 * g[i][j] for i, j in itertools.combinations(s, 2)),
    )


def naive_smea(x: np.ndarray, f: int) -> np.ndarray:
    g = np.array(naive_gram(x))

    def top(s: tuple[int, ...]) -> float:
        sub = g[np.ix_(s, s)]
        sub = sub - sub.mean(axis=0) - sub.mean(axis=1)[:, None] + sub.mean()
        return float(np.linalg.eigvalsh(sub)[-1])

    return naive_subset_mean(x, f, top)


def naive_cge(x: np.ndarray, f: int) -> np.ndarray:
    kept = sorted(range(len(x)), key=lambda i: (float(np.linalg.norm(x[i])), i))[: len(x) - f]
    return sum(x[i].astype(np.float64) for i in kept)


def naive_arc(x: np.ndarray, f: int) -> np.ndarray:
    n = len(x)
    k = (2 * f * (n - f)) // n
    norms = [float(np.linalg.norm(row)) for row in x]
    order = sorted(range(n), key=lambda i: norms[i])
    out = x.astype(np.float64)
    for i in order[n - k :]:
        out[i] = x[i] * (norms[order[n - k - 1]] / norms[i])
    return out


# ----------------------------------------------------------------------------- competitors


def load_byzfl() -> Any | None:
    """ByzFL's aggregators module, or ``None``. ByzFL 0.0.11's package ``__init__`` imports
    torchvision (for its benchmark), so the aggregators are loaded without running it."""
    try:
        spec = importlib.util.find_spec("byzfl")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.submodule_search_locations is None:
        return None
    if "byzfl" not in sys.modules:
        stub = types.ModuleType("byzfl")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["byzfl"] = stub
    try:
        module = importlib.import_module("byzfl.aggregators.aggregators")
    except ImportError:
        return None
    try:  # ARC (a pre-aggregator) lives next door; exposed on the same namespace here
        module.preaggregators = importlib.import_module("byzfl.aggregators.preaggregators")
    except ImportError:
        pass
    return module


def flower_helpers() -> dict[str, Any]:
    from flwr.app import ArrayRecord, RecordDict
    from flwr.server.strategy import aggregate as legacy
    from flwr.serverapp.strategy.bulyan import aggregate_n_closest_weights
    from flwr.serverapp.strategy.fedtrimmedavg import trim_mean
    from flwr.serverapp.strategy.multikrum import select_multikrum

    return {
        "records": lambda x: [RecordDict({"arrays": ArrayRecord([row])}) for row in x],
        "select_multikrum": select_multikrum,
        "trim_mean": trim_mean,
        "n_closest": aggregate_n_closest_weights,
        "legacy": legacy,
    }


def flower_selected(h: dict[str, Any], contents: list, f: int, m: int) -> np.ndarray:
    """Flower MultiKrum (m rows) / Krum (m = 1): select, then the plain mean of the kept arrays."""
    kept = h["select_multikrum"](contents, num_malicious_nodes=f, num_nodes_to_select=m)
    return np.mean([c["arrays"].to_numpy_ndarrays()[0] for c in kept], axis=0)


def flower_bulyan(h: dict[str, Any], contents: list, f: int) -> np.ndarray:
    """Flower's ``Bulyan`` strategy: θ rows by ONE Multi-Krum selection, then the β closest."""
    n = len(contents)
    theta, beta = n - 2 * f, n - 4 * f
    kept = h["select_multikrum"](contents, f, theta)
    arrays = [c["arrays"].to_numpy_ndarrays() for c in kept]
    median = [np.median(np.stack([a[0] for a in arrays]), axis=0)]
    return h["n_closest"](median, arrays, beta)[0]


# ----------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any, bool]:
    """``(median seconds, output, timed once)``."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    if first > SLOW_S:
        return first, out, True
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out, False


def as_numpy(out: Any) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        return out.detach().double().cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def run_size(n: int, d: int, repeats: int, byzfl: Any | None, smallest: bool) -> list[list[str]]:
    f = n // 5
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(n, d, generator=g)
    xn = x.numpy()
    g0 = x.mean(dim=0) + 0.1 * torch.randn(d, generator=g)
    ctx = RoundContext(
        f=f,
        client_ids=tuple(range(n)),
        generator=torch.Generator().manual_seed(SEED),
        server_update=g0,
        global_weights=torch.zeros(d),
    )

    def rule(name: str, **kw: Any) -> Callable[[], torch.Tensor]:
        cls = agg.AGGREGATORS.get(name)
        return lambda: cls(**kw)(x, ctx).aggregate

    ours: dict[str, Callable[[], Any]] = {
        "fedavg": lambda: agg.mean(x),
        "krum": lambda: agg.krum(x, f),
        "multi_krum": lambda: agg.multi_krum(x, f),
        "median": lambda: agg.median(x),
        "trimmed_mean": lambda: agg.trimmed_mean(x, f),
        "bulyan": lambda: agg.bulyan(x, f),
        "geometric_median": lambda: agg.geometric_median(x, iters=3, nu=0.1, init="zero"),
        "centered_clipping": lambda: agg.centered_clipping(x, None, tau=100.0),
        "norm_clipping": lambda: agg.norm_clipping(x, 1.0),
        "fltrust": lambda: agg.fltrust(x, g0),
        "flame": rule("flame"),
        "foolsgold": rule("foolsgold"),
        "dnc": rule("dnc"),
        "meamed": lambda: agg.meamed(x, f),
        "monna": lambda: agg.monna(x, f, 0),  # pivot row 0, as ByzFL's idx=0
        "caf": lambda: agg.caf(x, f),
        "cge": lambda: agg.cge(x, f),
        "arc": lambda: agg.arc(x, f),
    }
    enumerable = math.comb(n, f) <= MAX_SUBSETS  # MDA, SMEA: refused above the budget
    if enumerable:
        ours |= {"mda": lambda: agg.mda(x, f), "smea": lambda: agg.smea(x, f)}
    # (rule, implementation, callable, comparable?, note)
    others: list[tuple[str, str, Callable[[], Any], bool, str]] = []
    if smallest:
        others += [
            ("fedavg", "naive", lambda: sum(r.astype(np.float64) for r in xn) / n, True, ""),
            ("krum", "naive", lambda: xn[int(np.argmin(naive_krum_scores(xn, f)))], True, ""),
            ("multi_krum", "naive", lambda: naive_multi_krum(xn, f, n - f), True, ""),
            ("median", "naive", lambda: naive_median(xn), True, ""),
            ("trimmed_mean", "naive", lambda: naive_trimmed_mean(xn, f), True, ""),
            ("bulyan", "naive", lambda: naive_bulyan(xn, f), True, ""),
            ("geometric_median", "naive", lambda: naive_geometric_median(xn, 3, 0.1), True, ""),
            ("centered_clipping", "naive", lambda: naive_centered_clipping(xn, 100.0), True, ""),
            ("fltrust", "naive", lambda: naive_fltrust(xn, g0.numpy()), True, ""),
            ("meamed", "naive", lambda: naive_meamed(xn, f), True, ""),
            ("monna", "naive", lambda: naive_monna(xn, f, 0), True, ""),
            ("mda", "naive", lambda: naive_mda(xn, f), True, "pair-loop Gram"),
            ("smea", "naive", lambda: naive_smea(xn, f), True, "pair-loop Gram"),
            ("cge", "naive", lambda: naive_cge(xn, f), True, ""),
            ("arc", "naive", lambda: naive_arc(xn, f), True, ""),
        ]
    h = flower_helpers()
    contents = h["records"](xn)
    others += [
        (
            "krum",
            "flower",
            lambda: flower_selected(h, contents, f, 1),
            True,
            "select_multikrum, m=1",
        ),
        (
            "multi_krum",
            "flower",
            lambda: flower_selected(h, contents, f, n - f),
            True,
            "select_multikrum + mean",
        ),
        ("median", "flower", lambda: np.median(xn, axis=0), True, "np.median (FedMedian)"),
        (
            "trimmed_mean",
            "flower",
            lambda: h["trim_mean"](xn, f / n),
            True,
            f"trim_mean(beta={f / n:g})",
        ),
        (
            "bulyan",
            "flower",
            lambda: flower_bulyan(h, contents, f),
            False,
            "θ by one Multi-Krum pass: differs",
        ),
    ]
    if smallest:
        pairs = [([row], 1) for row in xn]
        others += [
            (
                "krum",
                "flower-legacy",
                lambda: h["legacy"].aggregate_krum(pairs, f, 0)[0],
                True,
                "pairwise-loop distances",
            ),
            (
                "bulyan",
                "flower-legacy",
                lambda: h["legacy"].aggregate_bulyan(
                    list(pairs), f, h["legacy"].aggregate_krum, to_keep=0
                )[0],
                True,
                "repeated Krum",
            ),
        ]
    if byzfl is not None:
        others += [
            ("fedavg", "byzfl", lambda: byzfl.Average()(x), True, ""),
            ("krum", "byzfl", lambda: byzfl.Krum(f=f)(x), False, "n−f−1 neighbours: differs"),
            (
                "multi_krum",
                "byzfl",
                lambda: byzfl.MultiKrum(f=f)(x),
                False,
                "n−f−1 neighbours: differs",
            ),
            ("median", "byzfl", lambda: byzfl.Median()(x), True, ""),
            ("trimmed_mean", "byzfl", lambda: byzfl.TrMean(f=f)(x), True, ""),
            (
                "geometric_median",
                "byzfl",
                lambda: byzfl.GeometricMedian(nu=0.1, T=3)(x),
                True,
                "zero init",
            ),
            ("centered_clipping", "byzfl", lambda: byzfl.CenteredClipping(tau=100.0)(x), True, ""),
            ("meamed", "byzfl", lambda: byzfl.Meamed(f=f)(x), True, "torch.quantile median"),
            ("monna", "byzfl", lambda: byzfl.MoNNA(f=f, idx=0)(x), True, "idx=0"),
            ("caf", "byzfl", lambda: byzfl.CAF(f=f)(x), False, "1 unseeded power step: differs"),
        ]
        if enumerable:
            others += [
                ("mda", "byzfl", lambda: byzfl.MDA(f=f)(x), True, "materialises the subsets"),
                ("smea", "byzfl", lambda: byzfl.SMEA(f=f)(x), False, "1 power step: differs"),
            ]
        if hasattr(byzfl, "preaggregators"):
            pre = byzfl.preaggregators
            others.append(("arc", "byzfl", lambda: pre.ARC(f=f)(x.clone()), True, "on a copy"))
    others += [
        ("reference", "torch X@X.T (f32)", lambda: x @ x.T, False, ""),
        ("reference", "numpy.median", lambda: np.median(xn, axis=0), False, ""),
        (
            "reference",
            "numpy sort trimmed",
            lambda: np.sort(xn, axis=0)[f : n - f].mean(axis=0),
            False,
            "",
        ),
    ]

    rows: list[list[str]] = []
    base: dict[str, tuple[float, np.ndarray]] = {}
    for name, fn in ours.items():
        t, out, _ = timed(fn, repeats)
        base[name] = (t, as_numpy(out))
        rows.append([name, "fedpoison", str(n), f"{d:.0e}", f"{t:.4f}", "1.00", "", ""])
    if not enumerable:
        note = f"refused: C({n}, {f}) = {math.comb(n, f):.1e} subsets > max_subsets"
        rows += [
            [name, "fedpoison", str(n), f"{d:.0e}", "", "", "", note] for name in ("mda", "smea")
        ]
    for name, impl, fn, comparable, note in others:
        try:
            t, out, once = timed(fn, repeats)
        except Exception as exc:  # noqa: BLE001 — a peer failing at this size is a result (e.g. ByzFL's torch.quantile above 2²⁴ entries)
            rows.append([name, impl, str(n), f"{d:.0e}", "", "", "", f"failed: {exc}"[:80]])
            continue
        note = "; ".join(filter(None, [note, "timed once" if once else ""]))
        ratio = diff = ""
        if name in base:
            ratio = f"{t / base[name][0]:.2f}"
            delta = float(np.max(np.abs(as_numpy(out) - base[name][1])))
            diff = f"{delta:.1e}" if comparable else f"({delta:.1e})"
        rows.append([name, impl, str(n), f"{d:.0e}", f"{t:.4f}", ratio, diff, note])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smaller sizes")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per row (after one warm-up)"
    )
    args = parser.parse_args(argv)
    byzfl = load_byzfl()
    sizes = SIZES[:2] if args.quick else SIZES
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, "
        f"byzfl {'yes' if byzfl else 'not importable'}; f = n/5; float32 N(0,1), seed {SEED}"
    )
    print("naive loops and flower-legacy (pairwise-loop distances) only at the smallest size")
    print("max |Δ| in parentheses: the definitions differ, so the difference is expected\n")
    header = ["rule", "implementation", "n", "d", "median s", "× fedpoison", "max |Δ|", "note"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for i, (n, d) in enumerate(sizes):
        for row in run_size(n, d, args.repeats, byzfl, smallest=i == 0):
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
