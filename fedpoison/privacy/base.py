"""The privacy plug points of a run, and the no-privacy default.

A :class:`Privacy` object is built from the ``privacy`` config group (``_target_``). The run
calls the same hooks whatever the mechanism; each mechanism overrides the ones it needs:

- clients: :meth:`Privacy.client_mods` (Flower ClientApp mods; local DP) and
  :meth:`Privacy.train` (the local training loop; DP-SGD);
- server: :meth:`Privacy.clip` before the defense and :meth:`Privacy.noise` after it
  (central DP), :meth:`Privacy.state_dict` for resumable adaptive clipping;
- accounting: :meth:`Privacy.spent` gives ``{"epsilon", "delta"}`` after a round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from flwr.clientapp.typing import Mod
from torch import nn

from fedpoison.privacy.accounting import ACCOUNTANTS, Release, epsilon
from fedpoison.training.local import LocalTraining, local_train


def positive(value: float, field: str) -> float:
    """``value`` as a float if > 0; else ``ValueError`` naming ``privacy.<field>``."""
    if not value > 0:
        raise ValueError(f"privacy.{field} must be > 0, got {value}")
    return float(value)


@dataclass(frozen=True)
class Setting:
    """What a mechanism needs to know about the run before round 1."""

    num_clients: int
    clients_per_round: int
    min_partition: int
    model: nn.Module
    procedure: LocalTraining


class Privacy:
    """No differential privacy: every hook is the identity."""

    name = "none"

    def check(self, setting: Setting) -> None:
        """Raise ``ValueError`` (what to change) if the settings cannot work for this run;
        DP mechanisms also fix their accounting here."""

    def client_mods(self, seed: int) -> list[Mod]:
        """Flower mods wrapped around the ClientApp."""
        return []

    def train(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        procedure: LocalTraining,
        generator: torch.Generator,
        noise_generator: torch.Generator,
        device: torch.device,
    ) -> float:
        """A client's local training; returns the mean training loss."""
        return local_train(model, x, y, procedure, generator, device)

    def clip(self, updates: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """Server-side per-client clipping of the ``(n, d)`` updates (new tensor or the input)."""
        return updates, {}

    def noise(self, aggregate: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Noise added to the defense's aggregate of ``n`` rows."""
        return aggregate

    def spent(self, rounds: int) -> dict[str, float]:
        """``{"epsilon", "delta"}`` after ``rounds`` rounds; empty without DP."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State carried across rounds (checkpointed)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class DifferentialPrivacy(Privacy):
    """Shared settings of the DP mechanisms: noise multiplier z, δ and the accountant.

    Args:
        noise_multiplier: z > 0; the Gaussian noise std is z × the clipping bound (× 1/n for a
            mean).
        delta: target δ of the (ε, δ) guarantee; must be < 1/(number of protected units).
        accountant: Opacus accountant, ``rdp`` (default), ``prv`` or ``gdp``.
    """

    def __init__(
        self, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp"
    ) -> None:
        if not noise_multiplier > 0:
            raise ValueError(
                f"privacy.noise_multiplier must be > 0 with privacy={self.name} "
                f"(got {noise_multiplier}); use privacy=none for no noise"
            )
        if not 0 < delta < 1:
            raise ValueError(f"privacy.delta must be in (0, 1), got {delta}")
        if accountant not in ACCOUNTANTS:
            raise ValueError(
                f"privacy.accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}"
            )
        self.noise_multiplier = float(noise_multiplier)
        self.delta = float(delta)
        self.accountant = accountant
        self._release: Release | None = None

    def _check_delta(self, units: int, what: str) -> None:
        if self.delta >= 1.0 / units:
            raise ValueError(
                f"privacy.delta={self.delta} must be < 1/{units} (1/{what}); "
                f"a δ that large allows releasing one {what.rstrip('s')}'s data outright "
                "— lower privacy.delta"
            )

    def spent(self, rounds: int) -> dict[str, float]:
        assert self._release is not None, "check() sets the release before round 1"
        return {
            "epsilon": epsilon(self._release, rounds, self.delta, self.accountant),
            "delta": self.delta,
        }
