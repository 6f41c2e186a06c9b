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

from fedpoison.privacy.accounting import ACCOUNTANTS, Release, epsilon, load
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
        """Validate the run before round 1 and fix what depends on it.

        Called once by ``fedpoison.run.prepare`` on the server-side instance, before any
        other hook. DP mechanisms fix their accounting here (the sampling rate and steps of
        the :class:`~fedpoison.privacy.accounting.Release` that :meth:`spent` composes) and
        may resolve defaults that depend on the run (``CentralDP``'s count noise). The
        instances the ClientApps build from the same config are not checked.

        Args:
            setting: population, participation, smallest partition, a fresh model and the
                clients' local procedure. Must not be modified (the model is a throw-away
                instance, but it is not this hook's to train).

        Raises:
            ValueError: the mechanism cannot work for this run (a δ too large for the number
                of protected units, a model Opacus cannot handle, ...), saying what to
                change.
        """

    def client_mods(self, seed: int) -> list[Mod]:
        """Flower ClientApp mods that apply the mechanism on the client (local DP).

        Called once per ClientApp construction, on every engine (Ray workers included).

        Args:
            seed: the run's seed; a mod derives its random streams from it and the round and
                client id of each message, never from a global RNG.

        Returns:
            The mods, outermost first, as ``flwr.clientapp.ClientApp(mods=...)`` takes them;
            they must be picklable (``engine=ray`` ships them to workers). Reply attacks
            run inside the ClientApp, so a mod sees an already corrupted reply and must pass
            through what it cannot read. Empty without local DP.
        """
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
        """A client's local training (DP-SGD replaces it).

        Called in every ClientApp ``train`` round, after the data attack (if any).

        Args:
            model: the client's model, holding the received global weights; trained in
                place (its new weights are the reply).
            x: training inputs ``(N, C, H, W)``, float32; not modified.
            y: int64 labels ``(N,)``; not modified.
            procedure: the round's local procedure (lr, batch size, epochs or steps).
            generator: batch sampling, seeded from (seed, round, client id).
            noise_generator: the mechanism's own noise stream (seeded the same way, a
                different purpose), unused without DP.
            device: where to train.

        Returns:
            The mean training loss over the local steps.

        Raises:
            ValueError: the client holds no examples.
        """
        return local_train(model, x, y, procedure, generator, device)

    def clip(self, updates: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """Server-side per-client clipping, before the defense (central DP).

        Called once per aggregated round, after the adversary stage (crafted rows are
        clipped like honest ones: the server cannot tell them apart) and before the defense.

        Args:
            updates: the round's ``(n, d)`` update matrix (docs/conventions.md §C1). Must not
                be modified in place.

        Returns:
            ``(rows, info)``: the ``(n, d)`` rows the defense aggregates (same dtype and
            device; a new tensor, or ``updates`` itself when nothing changes) and per-round
            metrics recorded with the round (e.g. ``dp_clip_norm``, ``dp_clipped``).
        """
        return updates, {}

    def noise(self, aggregate: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Server-side noise on the defense's output (central DP).

        Called once per aggregated round, right after the defense and before the server
        step ``w ← w + η·aggregate``; a mechanism with adaptive clipping updates its bound
        here (from what :meth:`clip` saw this round).

        Args:
            aggregate: the defense's ``(d,)`` aggregate. Must not be modified in place.
            n: the number of rows the defense aggregated (the mean's sensitivity is
                ``clip_norm/n``).
            generator: the only randomness allowed, seeded from (seed, round).

        Returns:
            The ``(d,)`` aggregate to apply, same dtype and device as ``aggregate``
            (``aggregate`` itself without DP).
        """
        return aggregate

    def spent(self, rounds: int) -> dict[str, float]:
        """The privacy spent so far, recorded with every round.

        A pure function of ``rounds`` (no accountant state), so a resumed run reports what
        an uninterrupted one would.

        Args:
            rounds: completed rounds (1-based round number of the round just finished).

        Returns:
            ``{"epsilon": ε, "delta": δ}`` of the composed releases; ``{}`` without DP.
        """
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State carried across rounds, written into every checkpoint.

        Returns:
            A fresh dict (the caller may keep it) of what a resumed run needs to continue
            bit for bit, e.g. the adaptive clip bound; ``{}`` for stateless mechanisms.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, when a run resumes from a checkpoint.

        Args:
            state: a dict from :meth:`state_dict` (possibly ``{}``, from a checkpoint
                without privacy state); missing keys should keep their current values.
        """


class DifferentialPrivacy(Privacy):
    """Shared settings of the DP mechanisms: noise multiplier z, δ and the accountant.

    Args:
        noise_multiplier: z > 0; the Gaussian noise std is z × the clipping bound (× 1/n for a
            mean).
        delta: target δ of the (ε, δ) guarantee; must be < 1/(number of protected units).
        accountant: ``rdp_wor`` (default: fixed-size sampling without replacement, Flower's
            ``RdpAccountant``) or Opacus' Poisson-sampling ``rdp``, ``prv``, ``gdp``
            (:mod:`fedpoison.privacy.accounting`).
    """

    def __init__(
        self, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp_wor"
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

    def _set_release(self, release: Release) -> None:
        """What :meth:`spent` accounts; imports the accountant's library now (``check``, before
        round 1), so that round 1's time does not include the import."""
        self._release = release
        load(self.accountant)

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
