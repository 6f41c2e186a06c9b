"""DeepSight (Rieger, Nguyen, Miettinen & Sadeghi, NDSS 2022, §V, Alg. 1–2). REFERENCES D36.

No official code exists; the steps follow the peers' common reading (FLPoison, BackFed,
3DFed) with their bugs fixed. With ``ΔW_k`` ``(P, p)`` and ``Δb_k`` ``(P,)`` client k's update
of the output layer (:meth:`~fedpoison.aggregators.flat_model.FlatModel.output_layer`):

1. **NEUPs**: ``ε_{k,j} = |Δb_{k,j}| + Σ_p |ΔW_{k,j,p}|``, ``NEUP_{k,j} = ε_{k,j}² / Σ_j ε_{k,j}²``
   (an all-zero layer update gives the uniform 1/P).
2. **Threshold exceedings** ``TE_k = #{j : NEUP_{k,j} > ξ_k}``, ``ξ_k = max(0.01, 1/P)·max_j
   NEUP_{k,j}`` (FLPoison's ``>``; 3DFed and BackFed count ``≥``).
3. **Labels**: client k is suspicious iff ``TE_k < median(TE)/2`` (the paper's "below";
   FLPoison and BackFed use ``≤``).
4. **DDifs**: for each of 3 seeds, ``N = 20 000`` inputs uniform in [0, 1]^input_shape (from the
   rule's generator), ``DDif_{k,i} = (1/N) Σ_x p_i(x; G + Δ_k) / p_i(x; G)`` with ``p`` the
   softmax probabilities (``logits=True``: the raw outputs, as FLPoison and BackFed divide).
   ``p(x; G)`` is floored at 1e-12 (FLPoison adds 1e-6).
5. **Cosine distances** ``1 − cos(Δb_k, Δb_l)`` of the output-bias updates.
6. **Clustering**: HDBSCAN on the cosine distances (precomputed), on the NEUP vectors and on
   each seed's DDif vectors; each labelling becomes a 0/1 matrix (0 = same **non-noise**
   cluster; FLPoison also puts noise points together); the DDif matrices are averaged over
   seeds, then the three are averaged, and a final HDBSCAN (precomputed,
   ``allow_single_cluster``, as FLPoison) clusters the result.
7. **Classification**: a cluster is accepted iff its suspicious fraction is ``< τ = 1/3``.
   A noise point of the final clustering is a cluster of its own, accepted iff it is not
   suspicious (BackFed, and the older DeepSight code it descends from; ``noise_singletons=False``:
   rejected, as FLPoison and 3DFed). The paper's treatment is [UNVERIFIED]; the default follows
   the stated purpose of the clustering (spread the labels within groups of similar models: a
   model in no group keeps its own label) and what it measures: on IID digits HDBSCAN leaves
   most honest updates unclustered, and rejecting them rejected about half of the honest
   clients without any attack (docs/backdoors.md).
8. **Clipping**: accepted updates are clipped to the median L2 norm of **all** updates and
   averaged.

HDBSCAN uses ``min_samples = 3`` everywhere (FLPoison) with scikit-learn's
``min_cluster_size = 5``, both capped at ``n``, and ``allow_single_cluster`` in **every**
clustering (``single_cluster=False``: only in the final one, as FLPoison). Without it HDBSCAN
cannot return "one cluster plus outliers": one honest group next to fewer than
``min_cluster_size`` attackers makes each stage all noise, the merged distances constant, and
the final clustering one cluster that accepts the attackers whenever they are under τ of the
round (the peers' code has this behaviour; the paper's setting is [UNVERIFIED]).

The models run through ``ctx.model`` (the architecture); the rule's generator makes the noise
inputs, so results are reproducible.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from fedpoison.aggregators._common import check_f, check_updates, require
from fedpoison.aggregators._linalg import clip_factors, cosine_matrix, row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.flame import _hdbscan
from fedpoison.aggregators.flat_model import FlatModel

PROBABILITY_FLOOR = 1e-12
"""Smallest ``p_i(x; G)`` a DDif divides by."""

CHUNK = 2048
"""Random inputs drawn and evaluated at a time."""


def neups(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """NEUPs ``(n, P)`` in float64 from the output-layer updates ``weight`` ``(n, P, p)`` and
    ``bias`` ``(n, P)``; overflow-safe (energies scaled by their row maximum first)."""
    energy = bias.to(torch.float64).abs() + weight.to(torch.float64).abs().sum(dim=2)
    top = energy.amax(dim=1, keepdim=True)
    scaled = energy / torch.where(top > 0, top, 1.0)
    squared = scaled.square()
    total = squared.sum(dim=1, keepdim=True)
    uniform = torch.full_like(squared, 1.0 / squared.shape[1])
    return torch.where(total > 0, squared / torch.where(total > 0, total, 1.0), uniform)


def threshold_exceedings(neup: torch.Tensor, factor: float = 0.01) -> torch.Tensor:
    """``TE_k = #{j : NEUP_{k,j} > max(factor, 1/P)·max_j NEUP_{k,j}}`` ``(n,)``."""
    xi = max(factor, 1.0 / neup.shape[1]) * neup.amax(dim=1, keepdim=True)
    return (neup > xi).sum(dim=1)


def suspicious(te: torch.Tensor) -> torch.Tensor:
    """``TE_k < median(TE)/2`` ``(n,)`` (even n: the midpoint median)."""
    median = torch.quantile(te.to(torch.float64), 0.5)
    return te.to(torch.float64) < median / 2


def ddifs(
    model: FlatModel,
    global_weights: torch.Tensor,
    updates: torch.Tensor,
    inputs: torch.Tensor,
    logits: bool = False,
    batch: int = 2048,
) -> torch.Tensor:
    """Division differences ``(n, P)``: the mean over ``inputs`` of ``p(x; G + Δ_k) / p(x; G)``
    (softmax probabilities, or raw outputs when ``logits``), in float64."""

    def outputs(flat: torch.Tensor) -> torch.Tensor:
        out = torch.cat(
            [model.logits(flat, inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
        )
        out = torch.nan_to_num(out.to(torch.float64), nan=0.0, posinf=1e300, neginf=-1e300)
        return out if logits else torch.softmax(out, dim=1)

    reference = outputs(global_weights)
    if not logits:
        reference = reference.clamp_min(PROBABILITY_FLOOR)
    rows = [
        (outputs(global_weights + updates[k]) / reference).mean(dim=0) for k in range(len(updates))
    ]
    return torch.nan_to_num(torch.stack(rows), nan=0.0, posinf=1e300, neginf=-1e300)


def _cluster_distances(labels: np.ndarray) -> np.ndarray:
    """0/1 matrix: 0 iff two clients share a non-noise cluster (0 on the diagonal)."""
    same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    out = np.where(same, 0.0, 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def _labels(
    features: np.ndarray, precomputed: bool, single: bool, sizes: tuple[int, int]
) -> np.ndarray:
    n = features.shape[0]
    cluster_size, samples = max(2, min(sizes[0], n)), max(1, min(sizes[1], n))
    kw: dict[str, Any] = {"min_cluster_size": cluster_size, "min_samples": samples, "copy": True}
    if precomputed:
        kw["metric"] = "precomputed"
    if single:
        kw["allow_single_cluster"] = True
    return np.asarray(_hdbscan()(**kw).fit(features).labels_)


def deepsight_clusters(
    cosine_distances: torch.Tensor,
    neup: torch.Tensor,
    ddif: torch.Tensor,
    min_cluster_size: int = 5,
    min_samples: int = 3,
    single_cluster: bool = True,
) -> np.ndarray:
    """The final HDBSCAN labels ``(n,)`` of the ensemble (step 6); ``ddif`` is ``(seeds, n, P)``;
    ``single_cluster``: ``allow_single_cluster`` in the first-stage clusterings too."""
    sizes, one = (min_cluster_size, min_samples), single_cluster
    cosine = _cluster_distances(_labels(cosine_distances.cpu().numpy(), True, one, sizes))
    neup_d = _cluster_distances(_labels(neup.cpu().numpy(), False, one, sizes))
    ddif_d = np.mean(
        [_cluster_distances(_labels(s.cpu().numpy(), False, one, sizes)) for s in ddif], axis=0
    )
    merged = (cosine + neup_d + ddif_d) / 3.0
    return _labels(merged, True, True, sizes)


def accepted_clusters(
    labels: np.ndarray, flags: torch.Tensor, tau: float = 1 / 3, noise_singletons: bool = True
) -> torch.Tensor:
    """Boolean mask ``(n,)``: members of clusters whose suspicious fraction is below τ. A noise
    point (label −1) is its own cluster when ``noise_singletons`` (accepted iff not suspicious,
    BackFed's rule), else rejected (FLPoison, 3DFed)."""
    lab, flags = torch.as_tensor(labels), flags.cpu()
    noise = lab < 0
    keep = noise & ~flags if noise_singletons else torch.zeros(len(lab), dtype=torch.bool)
    for c in lab[~noise].unique().tolist():
        members = lab == c
        keep |= members & (float(flags[members].sum()) < tau * int(members.sum()))
    return keep


@AGGREGATORS.register("deepsight")
class DeepSight(Aggregator):
    """DeepSight. Weights ``min(1, S/‖Δ_k‖)/|accepted|`` on accepted clients (S = median
    norm), 0 on the rejected. Needs ``ctx.model``, ``ctx.global_weights`` and the generator.
    ``info``: ``accepted``, ``suspicious``.

    Args:
        seeds: DDif input sets (3).
        samples: N, random inputs per set (20 000).
        tau: τ, the largest suspicious fraction of an accepted cluster is below it (1/3).
        threshold_factor: the 0.01 in ξ = max(0.01, 1/P)·max NEUP.
        logits: DDifs on raw outputs (FLPoison, BackFed) instead of softmax probabilities.
        min_cluster_size, min_samples: HDBSCAN's parameters (capped at n).
        single_cluster: ``allow_single_cluster`` in every clustering (False: the final only).
        noise_singletons: a final-stage noise point is its own cluster (accepted iff not
            suspicious); False: rejected (FLPoison, 3DFed).
    """

    paper: ClassVar[str] = "Rieger et al. 2022"
    requirement: ClassVar[str] = "n ≥ 2 (needs the model: a linear output layer)"
    needs_model: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False

    def __init__(
        self,
        seeds: int = 3,
        samples: int = 20000,
        tau: float = 1 / 3,
        threshold_factor: float = 0.01,
        logits: bool = False,
        min_cluster_size: int = 5,
        min_samples: int = 3,
        single_cluster: bool = True,
        noise_singletons: bool = True,
    ) -> None:
        if seeds < 1 or samples < 1 or not 0 < tau <= 1 or min_cluster_size < 2 or min_samples < 1:
            raise ValueError(
                "deepsight: needs seeds ≥ 1, samples ≥ 1, 0 < tau ≤ 1, min_cluster_size ≥ 2 and "
                f"min_samples ≥ 1, got {seeds=}, {samples=}, {tau=}, {min_cluster_size=}, "
                f"{min_samples=}"
            )
        self.seeds, self.samples, self.tau = int(seeds), int(samples), float(tau)
        self.threshold_factor, self.logits = float(threshold_factor), bool(logits)
        self.min_cluster_size, self.min_samples = int(min_cluster_size), int(min_samples)
        self.single_cluster, self.noise_singletons = bool(single_cluster), bool(noise_singletons)
        _hdbscan()

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, n >= 2, "n ≥ 2")

    def _ddifs(
        self, model: FlatModel, g: torch.Tensor, updates: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """One seed's DDifs ``(n, P)`` on ``samples`` fresh uniform inputs from ``gen``, drawn
        in chunks so that memory does not grow with ``samples``."""
        total: torch.Tensor | None = None
        for start in range(0, self.samples, CHUNK):
            size = min(CHUNK, self.samples - start)
            inputs = torch.rand((size, *model.input_shape), generator=gen, device=gen.device)
            part = ddifs(model, g, updates, inputs.to(updates), self.logits) * size
            total = part if total is None else total + part
        assert total is not None
        return total / self.samples

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = check_updates(updates, self.name)
        model = require(ctx.model, self.name, "ctx.model (it runs the clients' models)")
        g = require(ctx.global_weights, self.name, "ctx.global_weights").to(updates).reshape(-1)
        generator = require(ctx.generator, self.name, "a torch.Generator (random inputs)")
        w_slice, (classes, width), b_slice = model.output_layer()
        weight = updates[:, w_slice].reshape(n, classes, width)
        bias = updates[:, b_slice]
        neup = neups(weight, bias)
        flags = suspicious(threshold_exceedings(neup, self.threshold_factor))
        ddif = torch.stack([self._ddifs(model, g, updates, generator) for _ in range(self.seeds)])
        cosine = (1.0 - cosine_matrix(bias)).clamp_min(0.0)
        cosine.fill_diagonal_(0.0)
        sizes = (self.min_cluster_size, self.min_samples)
        labels = deepsight_clusters(cosine, neup, ddif, *sizes, self.single_cluster)
        keep = accepted_clusters(labels, flags, self.tau, self.noise_singletons)
        keep = keep.to(updates.device)
        bound = float(torch.quantile(row_norms(updates), 0.5))
        k = int(keep.sum())
        factors = clip_factors(updates, bound) if bound > 0 else torch.zeros_like(updates[:, 0])
        weights = factors * keep.to(updates.dtype) / max(k, 1)
        info = {"accepted": float(k), "suspicious": float(flags.sum())}
        return AggregationResult(
            weights @ updates, weights, info | ({"skipped": 1.0} if k == 0 else {})
        )
