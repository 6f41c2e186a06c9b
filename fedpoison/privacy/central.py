"""Central (server-side) DP around any defense: DP-FedAvg with fixed or adaptive clipping.

McMahan et al. 2018 ("Learning differentially private recurrent language models"), with the
adaptive clipping of Andrew et al. 2021 ("Differentially private learning with adaptive
clipping", Alg. 1 and Thm. 1):

1. every received update (honest or crafted: the server cannot tell) is clipped,
   Δ_i ← Δ_i · min(1, C/‖Δ_i‖);
2. the configured defense aggregates the clipped rows;
3. Gaussian noise N(0, (z_Δ·C/n)²·I) is added to the aggregate of the n rows;
4. adaptive clipping only: with b_i = 1[‖Δ_i‖ ≤ C] and b̄ = (Σ b_i + N(0, σ_b²))/n,
   C ← C·exp(−η_C·(b̄ − γ)) (geometric update toward the γ-quantile of the norms).

Noise: with fixed clipping z_Δ = z. With adaptive clipping the count is also released, and
Thm. 1 gives the same privacy as one Gaussian mechanism with multiplier z when
z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (needs 2σ_b > z); the accountant is charged z. Defaults
follow the paper: γ = 0.5, η_C = 0.2, σ_b = (clients per round)/20.

Sensitivity: C/n is the sensitivity of the *mean* of n clipped rows, so the reported ε is a
formal guarantee for ``fedavg`` with ``weighted=false`` and for ``norm_clipping``; robust rules
(median, Krum, ...) can move further when one client changes, and for them the same noise
gives the nominal ε of the mean, as in the DP-robustness literature that composes them.

Why not Flower's ``DifferentialPrivacyServerSide{Fixed,Adaptive}Clipping``: they clip in
their own ``aggregate_train`` before the wrapped strategy runs, so the simulated adversary
(which crafts its rows inside ``RobustStrategy.aggregate_train``) would escape clipping; their
noise comes from NumPy's global RNG (runs would not be reproducible); and their accountant
is limited to FedAvg with no amplification. Clipping and noise are a few lines; the default
accountant is Flower's ``RdpAccountant`` for sampling without replacement, which is how the
clients are sampled (:mod:`fedpoison.privacy.accounting`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from fedpoison.aggregators._linalg import clip_factors
from fedpoison.privacy.accounting import Release
from fedpoison.privacy.base import DifferentialPrivacy, Setting, positive


class CentralDP(DifferentialPrivacy):
    """Server-side clipping + Gaussian noise on the aggregate (``privacy=central``).

    Args:
        clip_norm: C, the per-client L2 bound (the initial bound when adaptive).
        noise_multiplier: z, charged to the accountant.
        target_quantile: γ for adaptive clipping; ``None`` = fixed clipping.
        clip_lr: η_C of the geometric clip update.
        clip_count_stddev: σ_b of the noisy unclipped count; ``None`` = clients per round / 20.
        delta, accountant: see :class:`DifferentialPrivacy`.
    """

    name = "central"

    def __init__(
        self,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        target_quantile: float | None = None,
        clip_lr: float = 0.2,
        clip_count_stddev: float | None = None,
        delta: float = 1e-5,
        accountant: str = "rdp_wor",
    ) -> None:
        super().__init__(noise_multiplier, delta, accountant)
        if target_quantile is not None and not 0 < target_quantile < 1:
            raise ValueError(
                "privacy.target_quantile must be in (0, 1) or null (fixed clipping), "
                f"got {target_quantile}"
            )
        self.clip_norm = positive(clip_norm, "clip_norm")
        self.target_quantile = target_quantile
        self.clip_lr = positive(clip_lr, "clip_lr")
        self.clip_count_stddev = clip_count_stddev
        self.update_noise_multiplier = self.noise_multiplier
        self._unclipped: int | None = None

    @property
    def adaptive(self) -> bool:
        """Whether the clip bound follows the γ-quantile of the update norms."""
        return self.target_quantile is not None

    def check(self, setting: Setting) -> None:
        clients_per_round = setting.clients_per_round
        self._check_delta(setting.num_clients, "clients")
        if self.adaptive:
            if self.clip_count_stddev is None:
                self.clip_count_stddev = clients_per_round / 20
            count_term = (2 * self.clip_count_stddev) ** -2
            if not self.clip_count_stddev > 0 or count_term >= self.noise_multiplier**-2:
                raise ValueError(
                    "adaptive clipping needs "
                    "2·privacy.clip_count_stddev > privacy.noise_multiplier "
                    f"(got σ_b={self.clip_count_stddev}, z={self.noise_multiplier}); "
                    "raise clip_count_stddev"
                )
            self.update_noise_multiplier = (self.noise_multiplier**-2 - count_term) ** -0.5
        self._set_release(Release(self.noise_multiplier, clients_per_round, setting.num_clients))

    def clip(self, updates: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        factors = clip_factors(updates, self.clip_norm)
        unclipped = int((factors >= 1).sum())
        self._unclipped = unclipped
        info = {"dp_clip_norm": self.clip_norm, "dp_clipped": len(factors) - unclipped}
        return updates * factors.unsqueeze(1).to(updates.dtype), info

    def noise(self, aggregate: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        std = self.update_noise_multiplier * self.clip_norm / n
        noisy = aggregate + std * torch.randn(
            aggregate.shape, generator=generator, dtype=aggregate.dtype, device=aggregate.device
        )
        if self.adaptive and self._unclipped is not None:
            assert self.clip_count_stddev is not None and self.target_quantile is not None
            count_noise = float(torch.randn((), generator=generator, device=aggregate.device))
            fraction = (self._unclipped + self.clip_count_stddev * count_noise) / n
            self.clip_norm *= math.exp(-self.clip_lr * (fraction - self.target_quantile))
        self._unclipped = None
        return noisy

    def state_dict(self) -> dict[str, Any]:
        return {"clip_norm": self.clip_norm}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.clip_norm = float(state.get("clip_norm", self.clip_norm))
