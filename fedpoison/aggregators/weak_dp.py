"""Weak DP: norm clipping + Gaussian noise as a backdoor defense (Sun, Kairouz, Suresh &
McMahan 2019, "Can you really backdoor federated learning?", §4; the clip and noise of the
edge-case authors' ``WeightDiffClippingDefense`` + ``AddNoise``). REFERENCES D40.

1. each delta is clipped, ``Δ_i ← Δ_i · min(1, M/‖Δ_i‖)`` (the same clip factors as
   ``privacy=central``'s clip stage, :func:`~fedpoison.aggregators._linalg.clip_factors`);
2. the clipped deltas are averaged (uniformly: the reference weights by the clients' reported
   data sizes, which only ``fedavg`` may read in fedpoison);
3. ``N(0, σ²I)`` is added to the aggregate (``noise_on="aggregate"``, the reference), drawn
   from the rule's generator. With ``training.server_lr = 1`` that is the reference's noise on
   the averaged model; with another η the model receives ``η·σ``.
   ``noise_on="client"`` adds ``N(0, σ²I)`` to every clipped delta before averaging instead
   (FLPoison's ``NormClipping(weakDP=True)``): local-DP-like, and the averaged noise has std
   ``σ/√n``.

Relation to ``privacy=central``: the code is the same, the purpose is not. ``defense=weak_dp``
with ``max_norm=M, stddev=σ`` equals ``privacy=central`` with ``clip_norm=M,
noise_multiplier=σ·n/M`` around ``defense=fedavg weighted=false`` (noise ``z·C/n = σ``),
except that the noise comes from the defense's stream, not the privacy one, and there is no
accountant: σ is chosen to blunt backdoors, not for an (ε, δ) guarantee, and none is
reported. With ``stddev=0`` it is ``norm_clipping``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from fedpoison.aggregators._common import check_updates, require, uniform
from fedpoison.aggregators._linalg import clip_factors
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext

NOISE_ON = ("aggregate", "client")


def weak_dp(
    updates: torch.Tensor,
    max_norm: float,
    stddev: float,
    generator: torch.Generator | None = None,
    noise_on: Literal["aggregate", "client"] = "aggregate",
) -> torch.Tensor:
    """Mean ``(d,)`` of the rows clipped to L2 norm ``max_norm``, plus ``N(0, stddev²)`` on
    the aggregate (or on each clipped row). ``generator`` is required when ``stddev > 0``.

    Example (no noise: norm clipping):

        >>> import torch
        >>> from fedpoison.aggregators import weak_dp
        >>> x = torch.tensor([[6.0, 0.0], [0.0, 2.0]])
        >>> [round(v, 4) for v in weak_dp(x, max_norm=3.0, stddev=0.0).tolist()]
        [1.5, 1.0]
    """
    n = check_updates(updates, "weak_dp")
    if max_norm <= 0 or stddev < 0 or noise_on not in NOISE_ON:
        raise ValueError(
            f"weak_dp: needs max_norm > 0, stddev ≥ 0 and noise_on in {NOISE_ON}, "
            f"got n={n}, max_norm={max_norm}, stddev={stddev}, noise_on={noise_on!r}"
        )
    mean = (clip_factors(updates, max_norm) / n) @ updates
    if stddev == 0:
        return mean
    g = require(generator, "weak_dp", "a torch.Generator for the noise (stddev > 0)")
    shape = (n, updates.shape[1]) if noise_on == "client" else updates.shape[1:]
    noise = torch.randn(shape, generator=g, device=g.device, dtype=updates.dtype)
    noise = noise.mean(dim=0) if noise_on == "client" else noise
    return mean + stddev * noise.to(updates.device)


@AGGREGATORS.register("weak_dp")
class WeakDP(Aggregator):
    """Weak DP. No client is rejected: weights are uniform 1/n (the weights of the clipped
    rows). ``info`` records ``max_norm`` and ``stddev`` every round.

    Args:
        max_norm: M, the L2 bound of each delta (edge-case code default 3; its README 2).
        stddev: σ of the Gaussian noise (0.025, the value quoted for Sun et al.; the
            edge-case code's default is 0.158).
        noise_on: ``aggregate`` (reference) or ``client`` (FLPoison's per-row noise).
    """

    paper: ClassVar[str] = "Sun et al. 2019"
    requirement: ClassVar[str] = "n ≥ 1"
    unanimous: ClassVar[bool] = False  # rows longer than M come back clipped (and noisy)
    deterministic: ClassVar[bool] = False

    def __init__(
        self,
        max_norm: float = 3.0,
        stddev: float = 0.025,
        noise_on: Literal["aggregate", "client"] = "aggregate",
    ) -> None:
        if max_norm <= 0 or stddev < 0 or noise_on not in NOISE_ON:
            raise ValueError(
                f"weak_dp: needs max_norm > 0, stddev ≥ 0 and noise_on in {NOISE_ON}, "
                f"got max_norm={max_norm}, stddev={stddev}, noise_on={noise_on!r}"
            )
        self.max_norm, self.stddev, self.noise_on = float(max_norm), float(stddev), noise_on

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        generator = require(ctx.generator, self.name, "a torch.Generator for the noise")
        aggregate = weak_dp(updates, self.max_norm, self.stddev, generator, self.noise_on)
        info = {"max_norm": self.max_norm, "stddev": self.stddev}
        return AggregationResult(aggregate, uniform(updates.shape[0], updates), info)
