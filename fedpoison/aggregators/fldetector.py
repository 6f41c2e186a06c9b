"""FLDetector (Zhang, Cao, Jia & Gong, KDD 2022, Alg. 1; official ``zaixizhang/FLDetector``
``train_mnist.py``: ``lbfgs``, ``detection1``). REFERENCES D37.

The server predicts each client's update from its previous one and flags clients whose
updates are persistently inconsistent with the prediction. Round ``t``, global model ``w^t``:

1. **Hessian-vector product** by compact L-BFGS over the window of the last ``N`` pairs
   ``s_j = w^j − w^{j−1}``, ``y_j = ḡ^j − ḡ^{j−1}`` (``ḡ`` = the aggregate): with
   ``SᵀY = L + D + U``, ``σ = y_Nᵀs_N / s_Nᵀs_N``, ``M = [[σSᵀS, L], [Lᵀ, −D]]``,
   ``Ĥv = σv − [σS Y]·M⁻¹·[σSᵀv; Yᵀv]`` for ``v = w^t − w^{t−1}`` (:func:`lbfgs_hvp`; this is
   the BFGS recursion from ``B₀ = σI``). ``M⁻¹`` is a least-squares solve, so dependent
   pairs (``N > d``, repeated steps) do not fail.
2. **Prediction and distance**: ``ĝ_i = g_i^{t−1} + Ĥv``, ``d_i = ‖ĝ_i − g_i‖``, normalised
   ``d̃_i = d_i / Σ_j d_j`` over the round's scored clients.
3. **Suspicious score** ``s_i = Σ`` of the client's last ``N`` normalised distances (the
   code's sum; the paper's mean differs by the factor N).
4. **Gap statistic** on ``s`` (:func:`~fedpoison.aggregators._kmeans1d.gap_statistic`, B = 10
   U[0, 1] reference sets from the rule's generator, k ≤ 7): ``k = 1`` means no attack;
   otherwise 2-means on ``s`` and the cluster with the larger mean is detected.

Conventions:

- fedpoison's rows are deltas, not gradients; the compact formula is homogeneous in ``Y``,
  so ``Ĥ`` is the code's times ``−lr`` and the normalised distances are the same.
- State is keyed by client id: a client is predicted only when it also took part in the
  previous round, and scored only once it has ``N`` distances (REFERENCES D37: the code
  assumes full participation, BackFed matches clients by position).
- Detected clients get weight 0 **from that round on**; the aggregate is the mean of the
  others. After a detection every client's score history restarts (the paper restarts
  training without the detected clients; a rule cannot reset the global model, so the model
  is kept). The official MNIST script only logs, its CIFAR script stops training.
- Gap(k) uses Tibshirani's mean of logs (``log_of_mean=True``: the code's log of the mean);
  the K-means fits are exact 1-D optima (the code runs scikit-learn's Lloyd iterations);
  when no ``k`` passes the gap test, ``K`` is taken (Tibshirani; the code raises
  UnboundLocalError there).
- ``start_round``: no prediction in rounds ≤ it (official: 50 on MNIST, 20 on CIFAR).

Cost per round: one ``(2N+1)×(2N+1)`` Gram matrix of ``[S; Y; v]`` (``O(N²d)``), ``Ĥv``
(``O(Nd)``), the distances (``O(nd)``); memory ``2N·d`` for the window plus ``n·d`` for the
previous updates.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_updates, require
from fedpoison.aggregators._kmeans1d import gap_statistic, kmeans_1d
from fedpoison.aggregators._linalg import gram, row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def lbfgs_hvp(s: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Compact L-BFGS approximation ``Ĥv`` ``(d,)`` from the pairs ``s``, ``y`` ``(N, d)``
    (oldest first) and ``v`` ``(d,)``; products in float64."""
    n = s.shape[0]
    g, scale = gram(torch.cat([s, y, v.reshape(1, -1)]))
    g = g * scale**2
    ss, sy = g[:n, :n], g[:n, n : 2 * n]
    sigma = sy[-1, -1] / ss[-1, -1]
    lower = torch.tril(sy, diagonal=-1)
    m = torch.cat(
        [
            torch.cat([sigma * ss, lower], dim=1),
            torch.cat([lower.T, -torch.diag(torch.diagonal(sy))], dim=1),
        ]
    )
    p = torch.cat([sigma * g[:n, 2 * n], g[n : 2 * n, 2 * n]])
    q = torch.linalg.lstsq(m.cpu(), p.cpu().reshape(-1, 1)).solution.reshape(-1).to(g.device)
    coef = torch.cat([sigma * q[:n], q[n:]]).to(s.dtype)
    return float(sigma) * v.to(s.dtype) - coef @ torch.cat([s, y])


def detect(
    scores: torch.Tensor, references: torch.Tensor, log_of_mean: bool = False
) -> torch.Tensor:
    """Boolean mask ``(m,)`` of the detected clients: empty when the gap statistic picks
    ``k = 1``, else the 2-means cluster of ``scores`` with the larger mean."""
    x = scores.detach().cpu().to(torch.float64).numpy()
    if gap_statistic(x, references.cpu().numpy(), log_of_mean=log_of_mean) == 1:
        return torch.zeros(len(x), dtype=torch.bool)
    _, labels = kmeans_1d(x, 2)  # cluster 1 holds the larger values
    return torch.from_numpy(labels == 1)


@AGGREGATORS.register("fldetector")
class FLDetector(Aggregator):
    """FLDetector with the mean of the undetected clients. Weights ``1/|kept|`` on the kept
    rows, 0 on the detected ones. ``info``: ``scored`` (clients scored this round),
    ``detected`` (clients detected so far). Needs ``ctx.global_weights``, the client ids and
    the generator.

    Args:
        window: N, the pairs kept for L-BFGS and the distances summed per client (10).
        start_round: rounds ≤ it are not predicted (official: 50 MNIST, 20 CIFAR).
        references: B, the gap statistic's uniform reference sets (10).
        log_of_mean: the official Gap(k) = log(mean W*) − log W (default: mean of logs).
    """

    paper: ClassVar[str] = "Zhang et al. 2022"
    requirement: ClassVar[str] = "n ≥ 1 (needs client ids; scores after N+2 rounds)"
    needs_client_rows: ClassVar[bool] = True
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    bounded_influence: ClassVar[bool] = False  # a mean until the attackers are detected
    aggregate_is_weighted_sum: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False

    def __init__(
        self,
        window: int = 10,
        start_round: int = 0,
        references: int = 10,
        log_of_mean: bool = False,
    ) -> None:
        if window < 1 or references < 2:
            raise ValueError(
                f"fldetector: needs window ≥ 1, references ≥ 2, got {window}, {references}"
            )
        self.window, self.start_round = int(window), int(start_round)
        self.references, self.log_of_mean = int(references), bool(log_of_mean)
        self.reset()

    def reset(self) -> None:
        """Forget every round (a fresh detector)."""
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.previous: dict[str, Any] | None = None  # global, aggregate, ids, updates
        self.distances: dict[int, list[float]] = {}
        self.detected: set[int] = set()

    def _distances(self, updates: torch.Tensor, ids: tuple[int, ...], g: torch.Tensor) -> None:
        """Append this round's normalised distances of the clients seen last round."""
        prev = self.previous
        if prev is None or len(self.pairs) < self.window or prev["global"].shape != g.shape:
            return
        index = {c: i for i, c in enumerate(prev["ids"])}
        rows = [i for i, c in enumerate(ids) if c in index and c not in self.detected]
        if not rows:
            return
        s = torch.stack([p[0] for p in self.pairs]).to(updates)
        y = torch.stack([p[1] for p in self.pairs]).to(updates)
        hvp = lbfgs_hvp(s, y, g - prev["global"].to(updates))
        residual = prev["updates"].to(updates)[[index[ids[i]] for i in rows]]  # a new tensor
        residual += hvp  # the prediction ĝ_i, then ĝ_i − g_i, in place
        residual -= updates if len(rows) == len(ids) else updates[rows]
        dist = row_norms(residual)
        total = float(dist.sum())
        for i, value in zip(rows, (dist / total if total > 0 else dist).tolist(), strict=True):
            history = self.distances.setdefault(ids[i], [])
            history.append(value)
            del history[: -self.window]

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = check_updates(updates, self.name)
        g = require(ctx.global_weights, self.name, "ctx.global_weights").to(updates).reshape(-1)
        generator = require(ctx.generator, self.name, "a torch.Generator (gap statistic)")
        ids = tuple(ctx.client_ids)
        if len(ids) != n or len(set(ids)) != n:
            raise ValueError(f"{self.name}: needs {n} distinct client ids, got n={n}, ids={ids}")
        if ctx.server_round > self.start_round:
            self._distances(updates, ids, g)
        scored = [i for i, c in enumerate(ids) if len(self.distances.get(c, ())) == self.window]
        if len(scored) >= 3:
            scores = torch.tensor([sum(self.distances[ids[i]]) for i in scored])
            refs = torch.rand((self.references, len(scored)), generator=generator,
                              device=generator.device, dtype=torch.float64)  # fmt: skip
            found = detect(scores, refs, self.log_of_mean)
            if bool(found.any()):
                self.detected |= {ids[scored[i]] for i in found.nonzero().flatten().tolist()}
                self.distances = {}
        kept = torch.tensor([c not in self.detected for c in ids], device=updates.device)
        weights = kept.to(updates.dtype) / max(int(kept.sum()), 1)
        aggregate = weights @ updates
        self._remember(updates, ids, g, aggregate)
        info = {"scored": float(len(scored)), "detected": float(len(self.detected))}
        return AggregationResult(
            aggregate, weights, info | ({"skipped": 1.0} if not kept.any() else {})
        )

    def _remember(
        self, updates: torch.Tensor, ids: tuple[int, ...], g: torch.Tensor, aggregate: torch.Tensor
    ) -> None:
        prev = self.previous
        if prev is not None and prev["global"].shape == g.shape:
            pair = (g - prev["global"].to(g), aggregate - prev["aggregate"].to(aggregate))
            if float(row_norms(pair[0].reshape(1, -1))[0]) > 0:  # a repeated model adds nothing
                self.pairs = [*self.pairs, pair][-self.window :]
        elif prev is not None:
            self.pairs = []
        self.previous = {"global": g.clone(), "aggregate": aggregate.detach().clone(),
                         "ids": ids, "updates": updates.detach().clone()}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        prev = None if self.previous is None else dict(self.previous)
        return {
            "pairs": [(s.clone(), y.clone()) for s, y in self.pairs],
            "previous": prev,
            "distances": {c: list(v) for c, v in self.distances.items()},
            "detected": sorted(self.detected),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.pairs = [(s.clone(), y.clone()) for s, y in state.get("pairs", [])]
        prev = state.get("previous")
        self.previous = None if prev is None else dict(prev)
        self.distances = {int(c): list(v) for c, v in state.get("distances", {}).items()}
        self.detected = set(state.get("detected", []))
