"""Speed of fedpoison's aggregation rules against naive loops, Flower's numpy helpers and ByzFL.

    python benchmarks/aggregators.py [--quick] [--repeats R] [--rules R1,R2] [--sizes NxD ...]

Data: float32 standard normal ``(n, d)`` from a fixed seed, f = n/5 assumed Byzantine, for
(n, d) ∈ {(20, 1e5), (100, 1e5), (100, 1e6)} (``--quick``: the first two; ``--sizes 100x1e6``
picks sizes, ``--rules`` rules and pre-aggregators by name). Each row is the median wall time
over the repeats, the ratio to fedpoison's time for the same rule (timed right before its
peers), and the largest absolute difference from fedpoison's output where the two definitions
coincide. A fedpoison row
``rule (variant)`` is the rule under a peer's convention (ByzFL's Krum neighbours, CAF's
seeded power step); the peer's row names the variant it is compared with. Pre-aggregators
(``nnm``, ``bucketing``, ``clip``, ``arc``) are timed on their mixed rows.

- naive: loop transcriptions of the paper formulas (loops over client pairs or, for the
  coordinate-wise rules, over coordinates). Run at n·d ≤ 2·10⁶ only.
- flower: the module-level helpers behind ``flwr.serverapp.strategy`` Krum, MultiKrum,
  FedMedian, FedTrimmedAvg and Bulyan (``select_multikrum`` on RecordDicts — it deserialises
  the arrays itself — ``np.median``, ``trim_mean``, ``aggregate_n_closest_weights``), plus the
  legacy ``flwr.server.strategy.aggregate`` Krum/Bulyan (pairwise loop; n·d ≤ 2·10⁶ only).
- byzfl: ByzFL's aggregators and pre-aggregators, when the package is importable, on the
  same torch tensor (its pre-aggregators on a copy: they assign into their input); ``byzfl
  (numpy)``: the same classes on the numpy array, whose median has no size limit (ByzFL's
  torch median is ``torch.quantile``, which refuses more than 2²⁴ entries). Random draws are
  matched by seeding torch's global generator as fedpoison's ``ctx.generator``.
- reference: one float32 ``X @ X.T``, ``numpy.median`` and a numpy sort-based trimmed mean.

Stateful detectors are timed in their steady state: ``fldetector`` loads a full window
(N = 10 pairs, 10 distances per client) before each call, so a row is one round's L-BFGS
product, distances and gap statistic (plus the state copy). ``deepsight`` runs an MLP
784→h→10 whose parameters (plus a padding buffer) are exactly ``d``, with ``samples=2000``
random inputs per seed instead of the default 20 000: its cost is linear in ``samples``.
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
from typing import Any, NamedTuple

import numpy as np
import torch

import fedpoison.aggregators as agg
from fedpoison.aggregators._subsets import MAX_SUBSETS
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.flat_model import FlatModel

SIZES = [(20, 100_000), (100, 100_000), (100, 1_000_000)]
SEED = 0
SLOW_S = 5.0  # a call slower than this is timed once (its warm-up call)
NAIVE_MAX = 2_000_000  # n·d up to which the naive loops and Flower's legacy helpers run


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


def byzfl_importable() -> bool:
    """Whether ByzFL can be imported, with its package ``__init__`` replaced by an empty
    namespace: ByzFL 0.0.11's ``__init__`` imports torchvision (for its benchmark), which
    neither its aggregators nor its ``fed_framework`` need."""
    if "byzfl" in sys.modules:
        return True
    try:
        spec = importlib.util.find_spec("byzfl")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.submodule_search_locations is None:
        return False
    stub = types.ModuleType("byzfl")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["byzfl"] = stub
    return True


def load_byzfl() -> Any | None:
    """ByzFL's aggregators module (its pre-aggregators as ``.preaggregators``), or ``None``."""
    if not byzfl_importable():
        return None
    try:
        module = importlib.import_module("byzfl.aggregators.aggregators")
        module.preaggregators = importlib.import_module("byzfl.aggregators.preaggregators")
    except ImportError:
        return None
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


class Peer(NamedTuple):
    """One competitor row: ``fn`` is timed and its output compared with fedpoison's row
    ``base`` (default: the rule itself); the difference is in parentheses unless
    ``comparable`` (the definitions differ)."""

    rule: str
    impl: str
    fn: Callable[[], Any]
    comparable: bool = True
    note: str = ""
    base: str | None = None


def seeded(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` called after seeding torch's global generator with ``SEED``: ByzFL draws from
    it, fedpoison from ``ctx.generator`` seeded alike, so both draw the same numbers."""

    def call() -> Any:
        torch.manual_seed(SEED)
        return fn()

    return call


def rule_of(key: str) -> str:
    """``"krum"`` for the fedpoison row keys ``"krum"`` and ``"krum (f−1)"``."""
    return key.split(" (")[0]


class Inputs(NamedTuple):
    """One size's data: the updates, as torch and numpy, and what the rules need."""

    x: torch.Tensor
    xn: np.ndarray
    f: int
    g0: torch.Tensor  # the server update (FLTrust)
    clip: float  # static clipping bound: about half the rows are clipped

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def ctx(self) -> RoundContext:
        """A fresh round context (its generator seeded with ``SEED`` at every call)."""
        return RoundContext(
            f=self.f,
            client_ids=tuple(range(self.n)),
            generator=torch.Generator().manual_seed(SEED),
            server_update=self.g0,
            global_weights=torch.zeros(self.x.shape[1]),
        )


def make_inputs(n: int, d: int) -> Inputs:
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(n, d, generator=g)
    g0 = x.mean(dim=0) + 0.1 * torch.randn(d, generator=g)
    return Inputs(x, x.numpy(), n // 5, g0, float(d) ** 0.5)


def mlp_with_d_parameters(d: int) -> FlatModel:
    """An MLP 784→h→10 with the largest h that fits, padded by a buffer to exactly ``d``."""
    hidden = (d - 10) // 795
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    net.register_buffer("pad", torch.zeros(d - 795 * hidden - 10))
    return FlatModel(net, (1, 28, 28))


def fldetector_round(x: torch.Tensor, ctx: RoundContext) -> Callable[[], torch.Tensor]:
    """One steady-state FLDetector round: a full window loaded, then ``aggregate``."""
    n, d = x.shape
    g = torch.Generator().manual_seed(SEED + 1)
    rule = agg.FLDetector()
    window = rule.window
    state = {
        "pairs": [
            (torch.randn(d, generator=g), torch.randn(d, generator=g)) for _ in range(window)
        ],
        "previous": {
            "global": 0.01 * torch.randn(d, generator=g),
            "aggregate": x.mean(dim=0),
            "ids": tuple(range(n)),
            "updates": x + 0.1 * torch.randn(n, d, generator=g),
        },
        "distances": {c: [1.0 / n] * (window - 1) for c in range(n)},
        "detected": [],
    }

    def call() -> torch.Tensor:
        rule.load_state_dict(state)
        return rule(x, ctx).aggregate

    return call


def fedpoison_rows(a: Inputs, enumerable: bool) -> dict[str, Callable[[], Any]]:
    """fedpoison's rules (and rule variants under a peer's convention) by row key."""
    x, f, n = a.x, a.f, a.n

    def rule(name: str, **kw: Any) -> Callable[[], torch.Tensor]:
        cls = agg.AGGREGATORS.get(name)
        return lambda: cls(**kw)(x, a.ctx()).aggregate

    def pre(name: str, **kw: Any) -> Callable[[], torch.Tensor]:
        cls = agg.PRE_AGGREGATORS.get(name)
        return lambda: cls(**kw)(x, a.ctx())[0]

    ours: dict[str, Callable[[], Any]] = {
        "fedavg": lambda: agg.mean(x),
        "krum": lambda: agg.krum(x, f),
        "krum (f−1)": lambda: agg.krum(x, f - 1),
        "multi_krum": lambda: agg.multi_krum(x, f),
        "multi_krum (f−1, m=n−f)": lambda: agg.multi_krum(x, f - 1, n - f),
        "median": lambda: agg.median(x),
        "trimmed_mean": lambda: agg.trimmed_mean(x, f),
        "bulyan": lambda: agg.bulyan(x, f),
        "geometric_median": lambda: agg.geometric_median(x, iters=3, nu=0.1, init="zero"),
        "centered_clipping": lambda: agg.centered_clipping(x, None, tau=100.0),
        "norm_clipping": lambda: agg.norm_clipping(x, 1.0),
        "fltrust": lambda: agg.fltrust(x, a.g0),
        "flame": rule("flame"),
        "foolsgold": rule("foolsgold"),
        "dnc": rule("dnc"),
        "meamed": lambda: agg.meamed(x, f),
        "monna": lambda: agg.monna(x, f, 0),  # pivot row 0, as ByzFL's idx=0
        "caf": lambda: agg.caf(x, f),
        "caf (power_iters=1)": rule("caf", power_iters=1),
        "cge": lambda: agg.cge(x, f),
        "foundationfl": rule("foundationfl"),  # the paper's m = n // 2
        "nnm": pre("nnm"),
        "bucketing": pre("bucketing", s=2),
        "clip": pre("clip", max_norm=a.clip),
        "arc": lambda: agg.arc(x, f),
        "rlr": rule("rlr"),
        "weak_dp": rule("weak_dp"),
        "crfl": rule("crfl"),
        "fldetector": fldetector_round(x, a.ctx()),
        "deepsight": deepsight(a),
    }
    if enumerable:  # MDA, SMEA: refused above the budget
        ours |= {"mda": lambda: agg.mda(x, f), "smea": lambda: agg.smea(x, f)}
    return ours


def deepsight(a: Inputs) -> Callable[[], torch.Tensor]:
    """DeepSight on a model with exactly ``d`` parameters (it runs the model)."""
    d = a.x.shape[1]
    g = torch.Generator().manual_seed(SEED + 2)
    ctx = RoundContext(
        f=a.f,
        client_ids=tuple(range(a.n)),
        generator=torch.Generator().manual_seed(SEED),
        global_weights=0.01 * torch.randn(d, generator=g),
        model=mlp_with_d_parameters(d),
    )
    return lambda: agg.DeepSight(samples=2000)(a.x, ctx).aggregate


def naive_rows(a: Inputs) -> list[Peer]:
    xn, f, n = a.xn, a.f, a.n
    return [
        Peer("fedavg", "naive", lambda: sum(r.astype(np.float64) for r in xn) / n),
        Peer("krum", "naive", lambda: xn[int(np.argmin(naive_krum_scores(xn, f)))]),
        Peer("multi_krum", "naive", lambda: naive_multi_krum(xn, f, n - f)),
        Peer("median", "naive", lambda: naive_median(xn)),
        Peer("trimmed_mean", "naive", lambda: naive_trimmed_mean(xn, f)),
        Peer("bulyan", "naive", lambda: naive_bulyan(xn, f)),
        Peer("geometric_median", "naive", lambda: naive_geometric_median(xn, 3, 0.1)),
        Peer("centered_clipping", "naive", lambda: naive_centered_clipping(xn, 100.0)),
        Peer("fltrust", "naive", lambda: naive_fltrust(xn, a.g0.numpy())),
        Peer("meamed", "naive", lambda: naive_meamed(xn, f)),
        Peer("monna", "naive", lambda: naive_monna(xn, f, 0)),
        Peer("mda", "naive", lambda: naive_mda(xn, f), note="pair-loop Gram"),
        Peer("smea", "naive", lambda: naive_smea(xn, f), note="pair-loop Gram"),
        Peer("cge", "naive", lambda: naive_cge(xn, f)),
        Peer("arc", "naive", lambda: naive_arc(xn, f)),
    ]


def flower_rows(a: Inputs, legacy: bool) -> list[Peer]:
    h = flower_helpers()
    xn, f, n = a.xn, a.f, a.n
    contents = h["records"](xn)
    rows = [
        Peer(
            "krum",
            "flower",
            lambda: flower_selected(h, contents, f, 1),
            note="select_multikrum, m=1",
        ),
        Peer(
            "multi_krum",
            "flower",
            lambda: flower_selected(h, contents, f, n - f),
            note="select_multikrum + mean",
        ),
        Peer("median", "flower", lambda: np.median(xn, axis=0), note="np.median (FedMedian)"),
        Peer(
            "trimmed_mean",
            "flower",
            lambda: h["trim_mean"](xn, f / n),
            note=f"trim_mean(beta={f / n:g})",
        ),
        Peer(
            "bulyan",
            "flower",
            lambda: flower_bulyan(h, contents, f),
            False,
            "θ by one Multi-Krum pass: differs",
        ),
    ]
    if legacy:
        pairs = [([row], 1) for row in xn]
        krum_legacy = h["legacy"].aggregate_krum
        rows += [
            Peer(
                "krum",
                "flower-legacy",
                lambda: krum_legacy(pairs, f, 0)[0],
                note="pairwise-loop distances",
            ),
            Peer(
                "bulyan",
                "flower-legacy",
                lambda: h["legacy"].aggregate_bulyan(list(pairs), f, krum_legacy, to_keep=0)[0],
                True,
                "repeated Krum",
            ),
        ]
    return rows


def byzfl_rows(byzfl: Any, a: Inputs, enumerable: bool) -> list[Peer]:
    """ByzFL's classes on the same inputs; its pre-aggregators on a copy (they assign into
    their input; the copy is timed)."""
    x, xn, f = a.x, a.xn, a.f
    pre = byzfl.preaggregators
    rows = [
        Peer("fedavg", "byzfl", lambda: byzfl.Average()(x)),
        Peer("krum", "byzfl", lambda: byzfl.Krum(f=f)(x), True, "n−f−1 nbrs", "krum (f−1)"),
        Peer(
            "multi_krum",
            "byzfl",
            lambda: byzfl.MultiKrum(f=f)(x),
            True,
            "n−f−1 nbrs",
            "multi_krum (f−1, m=n−f)",
        ),
        Peer("median", "byzfl", lambda: byzfl.Median()(x), True, "torch.quantile"),
        Peer("median", "byzfl (numpy)", lambda: byzfl.Median()(xn)),
        Peer("trimmed_mean", "byzfl", lambda: byzfl.TrMean(f=f)(x)),
        Peer("trimmed_mean", "byzfl (numpy)", lambda: byzfl.TrMean(f=f)(xn)),
        Peer("geometric_median", "byzfl", lambda: byzfl.GeometricMedian(nu=0.1, T=3)(x)),
        Peer("centered_clipping", "byzfl", lambda: byzfl.CenteredClipping(tau=100.0)(x)),
        Peer(
            "norm_clipping",
            "byzfl",
            lambda: byzfl.Average()(pre.Clipping(c=1.0)(x.clone())),
            True,
            "Clipping + Average",
        ),
        Peer("meamed", "byzfl", lambda: byzfl.Meamed(f=f)(x), True, "torch.quantile"),
        Peer("meamed", "byzfl (numpy)", lambda: byzfl.Meamed(f=f)(xn)),
        Peer("monna", "byzfl", lambda: byzfl.MoNNA(f=f, idx=0)(x), True, "idx=0"),
        Peer(
            "caf",
            "byzfl",
            seeded(lambda: byzfl.CAF(f=f)(x)),
            True,
            "1 power step, seeded",
            "caf (power_iters=1)",
        ),
        Peer("nnm", "byzfl", lambda: pre.NNM(f=f)(x)),
        Peer("bucketing", "byzfl", seeded(lambda: pre.Bucketing(s=2)(x)), True, "seeded"),
        Peer("clip", "byzfl", lambda: pre.Clipping(c=a.clip)(x.clone()), True, "on a copy"),
        Peer("arc", "byzfl", lambda: pre.ARC(f=f)(x.clone()), True, "on a copy"),
    ]
    if enumerable:
        rows += [
            Peer("mda", "byzfl", lambda: byzfl.MDA(f=f)(x), True, "materialises the subsets"),
            Peer("smea", "byzfl", seeded(lambda: byzfl.SMEA(f=f)(x)), False, "1 power step"),
        ]
    return rows


def reference_rows(a: Inputs) -> list[Peer]:
    x, xn, f, n = a.x, a.xn, a.f, a.n
    return [
        Peer("reference", "torch X@X.T (f32)", lambda: x @ x.T, False),
        Peer("reference", "numpy.median", lambda: np.median(xn, axis=0), False),
        Peer(
            "reference",
            "numpy sort trimmed",
            lambda: np.sort(xn, axis=0)[f : n - f].mean(axis=0),
            False,
        ),
    ]


def peer_row(
    p: Peer, size: list[str], repeats: int, base: dict[str, tuple[float, np.ndarray]]
) -> list[str]:
    """The table row of one competitor: time, ratio and max |Δ| to its fedpoison row (and,
    when that row is a variant, the difference to the rule's default in the note)."""
    try:
        t, out, once = timed(p.fn, repeats)
    except Exception as exc:  # noqa: BLE001 — a peer failing at this size is a result (e.g. ByzFL's torch.quantile above 2²⁴ entries)
        return [p.rule, p.impl, *size, "", "", "", f"failed: {exc}"[:80]]
    key = p.base or p.rule
    notes = [p.note, f"vs {key}" if p.base else ""]
    ratio = diff = ""
    if key in base:
        out_np = as_numpy(out)
        ratio = f"{t / base[key][0]:.2f}"
        delta = float(np.max(np.abs(out_np - base[key][1])))
        diff = f"{delta:.1e}" if p.comparable else f"({delta:.1e})"
        if p.base and p.rule in base:
            delta = float(np.max(np.abs(out_np - base[p.rule][1])))
            notes.append(f"vs {p.rule}: {delta:.1e}")
    notes.append("timed once" if once else "")
    return [p.rule, p.impl, *size, f"{t:.4f}", ratio, diff, "; ".join(filter(None, notes))]


def run_size(
    n: int, d: int, repeats: int, byzfl: Any | None, rules: set[str] | None = None
) -> list[list[str]]:
    """The table rows of one size; ``rules``: only these rules (and pre-aggregators)."""
    a = make_inputs(n, d)
    size = [str(n), f"{d:.0e}"]
    enumerable = math.comb(n, a.f) <= MAX_SUBSETS  # MDA, SMEA: refused above the budget
    peers = naive_rows(a) if n * d <= NAIVE_MAX else []
    peers += flower_rows(a, legacy=n * d <= NAIVE_MAX)
    peers += byzfl_rows(byzfl, a, enumerable) if byzfl is not None else []
    peers += reference_rows(a)

    def wanted(rule: str) -> bool:
        return rules is None or rule in rules

    rows: list[list[str]] = []
    base: dict[str, tuple[float, np.ndarray]] = {}
    waiting = [p for p in peers if wanted(p.rule)]
    for key, fn in fedpoison_rows(a, enumerable).items():
        if not wanted(rule_of(key)):
            continue
        t, out, _ = timed(fn, repeats)
        base[key] = (t, as_numpy(out))
        variant = key[len(rule_of(key)) + 1 :]
        impl = f"fedpoison {variant}" if variant else "fedpoison"
        rows.append([rule_of(key), impl, *size, f"{t:.4f}", "1.00", "", ""])
        # its peers right after it, so that the machine's load drifts little between them
        rows += [peer_row(p, size, repeats, base) for p in waiting if (p.base or p.rule) == key]
        waiting = [p for p in waiting if (p.base or p.rule) != key]
    if not enumerable:
        note = f"refused: C({n}, {a.f}) = {math.comb(n, a.f):.1e} subsets > max_subsets"
        rows += [[r, "fedpoison", *size, "", "", "", note] for r in ("mda", "smea") if wanted(r)]
    rows += [peer_row(p, size, repeats, base) for p in waiting]
    return rows


def parse_size(text: str) -> tuple[int, int]:
    """``"100x1e6"`` → ``(100, 1000000)``."""
    n, _, d = text.partition("x")
    return int(float(n)), int(float(d))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smaller sizes")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per row (after one warm-up)"
    )
    parser.add_argument(
        "--rules", help="comma-separated rule / pre-aggregator names (default: all; 'reference')"
    )
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, help="sizes NxD, e.g. 100x1e6 (default: all)"
    )
    args = parser.parse_args(argv)
    byzfl = load_byzfl()
    sizes = args.sizes or (SIZES[:2] if args.quick else SIZES)
    rules = set(args.rules.split(",")) if args.rules else None
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, "
        f"byzfl {'yes' if byzfl else 'not importable'}; f = n/5; float32 N(0,1), seed {SEED}"
    )
    print(f"naive loops and flower-legacy (pairwise-loop distances) only at n·d ≤ {NAIVE_MAX:.0e}")
    print("max |Δ| in parentheses: the definitions differ, so the difference is expected\n")
    header = ["rule", "implementation", "n", "d", "median s", "× fedpoison", "max |Δ|", "note"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n, d in sizes:
        for row in run_size(n, d, args.repeats, byzfl, rules):
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
