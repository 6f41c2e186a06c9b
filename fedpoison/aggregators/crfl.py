"""CRFL (Xie, Chen, Chen & Li, ICML 2021, "CRFL: Certifiably Robust Federated Learning
against Backdoor Attacks", Alg. 1 and Thm. 2; official ``AI-secure/CRFL``). REFERENCES D39.

**Training time**, each round ``t`` (server side):

1. the clients' models are averaged: ``w = G + mean(Δ)`` (the official geometric-median
   option is not offered);
2. the **global model's parameter norm** is clipped, not the updates:
   ``w ← w · min(1, ρ_t/‖w‖)`` with ``ρ_t = min(clip_max, clip_slope·t + clip_offset)``
   (official MNIST: ``min(15, 0.1t + 2)``; EMNIST ``min(100, 0.25t + 4)``; LOAN
   ``min(5, 0.025t + 2)``);
3. ``N(0, σ²)`` is added to every entry of the flat model, which holds the whole
   ``state_dict`` (buffers included, as the official code perturbs every entry), drawn from
   the rule's generator.

The rule returns ``w − G``, so the server's ``w ← G + η·(w − G)`` is the paper's model for
``training.server_lr = 1`` (its setting; another η interpolates). The official code evaluates
and saves the pre-noise model of round ``t``; fedpoison's next global model, which it
evaluates, is the noisy one (the model the clients receive in both).

**Test time** (:func:`smoothed_votes`, :func:`crfl_radius`, run once on the final model by the
CLI's ``certify`` step): ``M`` copies ``θ_T + N(0, σ_T² I)`` vote on each test example;
``p̂_A``/``p̂_B`` are the top and runner-up vote fractions, corrected by Hoeffding,
``p_A = p̂_A − √(ln(1/α)/(2M))``, ``p_B = p̂_B + √(ln(1/α)/(2M))``, and the certified radius
(Thm. 2 as the official ``certify_mnist.py`` computes it) is::

    RAD = sqrt( −ln(1 − (√p_A − √p_B)²) · σ² / ( 2·R·τ²·L_z²·Σ_{i∈adv} p_i²·γ²·η²·(q_B/n_B)²
                · Π_{t=t_adv+1}^{T−1} (2Φ(ρ_t/σ) − 1) · (2Φ(ρ_T/σ_T) − 1) ) )

with ``L_z² = 2 + 2ρ_{t_adv} + ρ_{t_adv}²``, ``p_i = 1/N``. Deviations from the official
code, each fixing one of its quirks: RAD = 0 (abstain) unless ``p_A > p_B`` (the official
code computes a radius anyway); ``ρ_{t_adv}`` follows the schedule at ``t_adv`` (the official
code hard-codes 3; ``rho_attack=3`` restores it); ``τ``, ``N``, ``R``, η and ``t_adv`` come
from the run rather than MNIST constants; ``p_A = 1`` gives a finite radius, not a sentinel.
Certified accuracy at radius r is the fraction of test examples whose vote is correct
**and** whose RAD ≥ r.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_updates, require, uniform
from fedpoison.aggregators._linalg import row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.flat_model import FlatModel


@dataclass(frozen=True)
class ClipSchedule:
    """``ρ_t = min(clip_max, clip_slope·t + clip_offset)``, the model-norm bound of round t."""

    clip_slope: float = 0.1
    clip_offset: float = 2.0
    clip_max: float = 15.0

    def __call__(self, t: int) -> float:
        return min(self.clip_max, self.clip_slope * t + self.clip_offset)


def crfl(
    updates: torch.Tensor,
    global_weights: torch.Tensor,
    bound: float,
    sigma: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``w − G`` ``(d,)`` for ``w = clip_ρ(G + mean(Δ)) + N(0, σ²)``; ``generator`` is needed
    when ``sigma > 0``.

    Example (no noise): ``G + mean = (6, 8)`` has norm 10 and is clipped to norm 5.

        >>> import torch
        >>> from fedpoison.aggregators import crfl
        >>> x = torch.tensor([[4.0, 8.0], [6.0, 6.0]])
        >>> crfl(x, torch.ones(2), bound=5.0, sigma=0.0).tolist()
        [2.0, 3.0]
    """
    n = check_updates(updates, "crfl")
    if bound <= 0 or sigma < 0:
        raise ValueError(f"crfl: needs bound > 0 and sigma ≥ 0, got n={n}, {bound=}, {sigma=}")
    g = global_weights.to(updates).reshape(-1)
    check_updates(g.reshape(1, -1), "crfl (global_weights)")
    model = g + updates.mean(dim=0)
    norm = float(row_norms(model.reshape(1, -1))[0])
    if norm > bound:
        model = model * (bound / norm)
    if sigma > 0:
        gen = require(generator, "crfl", "a torch.Generator for the noise (sigma > 0)")
        noise = torch.randn(model.shape, generator=gen, device=gen.device, dtype=model.dtype)
        model = model + sigma * noise.to(model.device)
    return model - g


@dataclass(frozen=True)
class Threat:
    """The attack a certificate covers (Thm. 2's quantities).

    Attributes:
        attackers: R, the attackers per round.
        clients_per_round: N (each p_i = 1/N).
        local_iters: τ, local SGD iterations per round.
        lr: η, the clients' learning rate.
        scale: γ, the attackers' scale factor.
        poison_fraction: q_B/n_B, the poisoned fraction of each attacker's batch.
        attack_round: t_adv, the last round the attackers act in.
        num_rounds: T.
    """

    attackers: int
    clients_per_round: int
    local_iters: int
    lr: float
    scale: float
    poison_fraction: float
    attack_round: int
    num_rounds: int


def _two_phi_minus_one(x: float) -> float:
    """``2Φ(x) − 1`` as ``erf(x/√2)`` (no cancellation for small x)."""
    return math.erf(x / math.sqrt(2.0))


def crfl_radius(
    p_a: torch.Tensor,
    p_b: torch.Tensor,
    threat: Threat,
    schedule: ClipSchedule,
    sigma_train: float,
    sigma_test: float,
    rho_attack: float | None = None,
) -> torch.Tensor:
    """Certified radius (Thm. 2, formula above) for bounded vote fractions ``p_a``, ``p_b``
    (already Hoeffding-corrected); 0 where ``p_a ≤ p_b`` (abstain)."""
    rho_adv = schedule(threat.attack_round) if rho_attack is None else rho_attack
    lz2 = 2.0 + 2.0 * rho_adv + rho_adv**2
    weights2 = threat.attackers * (1.0 / threat.clients_per_round) ** 2
    product = _two_phi_minus_one(schedule(threat.num_rounds) / sigma_test)
    for t in range(threat.attack_round + 1, threat.num_rounds):
        product *= _two_phi_minus_one(schedule(t) / sigma_train)
    denominator = (
        2.0 * threat.attackers * threat.local_iters**2 * lz2 * weights2
        * (threat.scale * threat.lr * threat.poison_fraction) ** 2 * product
    )  # fmt: skip
    a, b = p_a.clamp(0.0, 1.0).to(torch.float64), p_b.clamp(0.0, 1.0).to(torch.float64)
    gap = (a.sqrt() - b.sqrt()).square().clamp(max=1.0 - 1e-16)
    if denominator <= 0:
        return torch.where(a > b, math.inf, 0.0)
    radius = (-torch.log1p(-gap) * sigma_train**2 / denominator).sqrt()
    return torch.where(a > b, radius, 0.0)


def smoothed_votes(
    model: FlatModel,
    flat: torch.Tensor,
    x: torch.Tensor,
    samples: int,
    sigma: float,
    generator: torch.Generator,
    batch: int = 4096,
) -> torch.Tensor:
    """Votes ``(len(x), classes)`` of ``samples`` copies ``flat + N(0, σ²I)`` (argmax of each
    copy's output on each example)."""
    votes: torch.Tensor | None = None
    for _ in range(samples):
        noise = torch.randn(flat.shape, generator=generator, device=generator.device)
        theta = flat + sigma * noise.to(flat)
        preds = torch.cat([model.logits(theta, x[i : i + batch]).argmax(1) for i in
                           range(0, len(x), batch)])  # fmt: skip
        if votes is None:
            classes = int(model.logits(theta, x[:1]).shape[1])
            votes = torch.zeros((len(x), classes), dtype=torch.int64, device=flat.device)
        votes[torch.arange(len(x), device=flat.device), preds] += 1
    assert votes is not None
    return votes


@AGGREGATORS.register("crfl")
class CRFL(Aggregator):
    """CRFL's training-time clip and noise, plus the test-time certificate (:meth:`certify`).
    No client is rejected: weights are uniform 1/n. Needs ``ctx.global_weights`` and the
    generator; ``info`` records ``rho`` (ρ_t) and ``clipped`` (1 when the model was clipped).

    Args:
        clip_slope, clip_offset, clip_max: ρ_t = min(clip_max, clip_slope·t + clip_offset).
        sigma: σ of the training-time noise on the model (official 0.01).
        certify_samples: M, noisy copies voting at test time (official 1000).
        certify_sigma: σ_T of the test-time smoothing (official 0.01).
        alpha: α of the Hoeffding bound (official 0.001).
        radii: radii at which the certified accuracy is reported.
        scale: γ, the attackers' scale factor the certificate covers (official 100).
        poison_fraction: q_B/n_B, the poisoned fraction of an attacker's batch (official 5/100).
        rho_attack: ρ_{t_adv} in L_z; ``None`` = the schedule at t_adv (official code: 3).
    """

    paper: ClassVar[str] = "Xie et al. 2021"
    requirement: ClassVar[str] = "n ≥ 1"
    unanimous: ClassVar[bool] = False  # the model norm is clipped and noise added
    deterministic: ClassVar[bool] = False

    def __init__(
        self,
        clip_slope: float = 0.1,
        clip_offset: float = 2.0,
        clip_max: float = 15.0,
        sigma: float = 0.01,
        certify_samples: int = 1000,
        certify_sigma: float = 0.01,
        alpha: float = 0.001,
        radii: Sequence[float] = (0.0, 0.01, 0.02, 0.05, 0.1),
        scale: float = 100.0,
        poison_fraction: float = 0.05,
        rho_attack: float | None = None,
    ) -> None:
        if clip_max <= 0 or clip_offset <= 0 or clip_slope < 0 or sigma < 0:
            raise ValueError(
                "crfl: needs clip_max > 0, clip_offset > 0, clip_slope ≥ 0 and sigma ≥ 0, got "
                f"{clip_max=}, {clip_offset=}, {clip_slope=}, {sigma=}"
            )
        if certify_samples < 1 or certify_sigma <= 0 or not 0 < alpha < 1:
            raise ValueError(
                "crfl: needs certify_samples ≥ 1, certify_sigma > 0 and 0 < alpha < 1, got "
                f"{certify_samples=}, {certify_sigma=}, {alpha=}"
            )
        self.schedule = ClipSchedule(clip_slope, clip_offset, clip_max)
        self.sigma = float(sigma)
        self.certify_samples, self.certify_sigma = int(certify_samples), float(certify_sigma)
        self.alpha, self.radii = float(alpha), tuple(float(r) for r in radii)
        self.scale, self.poison_fraction = float(scale), float(poison_fraction)
        self.rho_attack = rho_attack

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        g = require(ctx.global_weights, self.name, "ctx.global_weights (it clips the model)")
        generator = require(ctx.generator, self.name, "a torch.Generator for the noise")
        bound = self.schedule(ctx.server_round)
        model = g.to(updates) + updates.mean(dim=0)
        clipped = float(row_norms(model.reshape(1, -1))[0]) > bound
        aggregate = crfl(updates, g, bound, self.sigma, generator)
        info = {"rho": bound, "clipped": float(clipped)}
        return AggregationResult(aggregate, uniform(updates.shape[0], updates), info)

    def certify(
        self,
        model: FlatModel,
        flat: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: Threat,
        generator: torch.Generator,
    ) -> dict[str, Any]:
        """Parameter smoothing of the final model ``flat`` on the test set ``(x, y)``: the
        smoothed accuracy, the abstentions, the mean radius and the certified accuracy at
        each of ``radii`` (keys ``certified_accuracy@<r>``)."""
        m = self.certify_samples
        votes = smoothed_votes(model, flat, x, m, self.certify_sigma, generator)
        top = votes.topk(min(2, votes.shape[1]), dim=1)
        counts = top.values.to(torch.float64) / m
        p_a = counts[:, 0]
        p_b = counts[:, 1] if counts.shape[1] > 1 else torch.zeros_like(p_a)
        slack = math.sqrt(math.log(1.0 / self.alpha) / (2.0 * m))
        radius = crfl_radius(
            p_a - slack, p_b + slack, threat, self.schedule, self.sigma, self.certify_sigma,
            self.rho_attack,
        )  # fmt: skip
        correct = top.indices[:, 0] == y.to(top.indices.device)
        out: dict[str, Any] = {
            "samples": m,
            "sigma": self.certify_sigma,
            "alpha": self.alpha,
            "smoothed_accuracy": float(correct.to(torch.float64).mean()),
            "abstain": float((radius <= 0).to(torch.float64).mean()),
            "mean_radius": float(radius[torch.isfinite(radius)].mean()) if len(radius) else 0.0,
            "threat": vars(threat).copy(),
        }
        for r in self.radii:
            certified = correct & (radius >= r) & (radius > 0)
            out[f"certified_accuracy@{r:g}"] = float(certified.to(torch.float64).mean())
        return out
