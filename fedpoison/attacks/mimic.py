"""Mimic (Karimireddy, He, Jaggi, ICLR 2022, "Byzantine-Robust Learning on Heterogeneous
Datasets via Bucketing"): every attacker sends the current update of one honest client i*.

Copying a real honest update passes every outlier test; under heterogeneous data it
over-weights that client's data and starves the others. How i* is chosen (``target="auto"``,
the official ``MimicVariantAttacker``), with ``H`` the candidate rows of the round and ``μ^t``
their mean:

- first active round (t = 0): ``μ ← μ^0`` and one power-iteration step on their covariance,
  ``z ← Σ_{i∈H} ⟨g_i − μ, z₀⟩ (g_i − μ)``, normalised, from a standard-normal ``z₀``;
- warm-up rounds 1 ≤ t < ``warmup``: running mean ``μ ← (t·μ + μ^t)/(t+1)`` and
  ``z ← (t·z + ẑ/‖ẑ‖)/(t+1)``, normalised, ``ẑ`` the power step with the running ``μ``
  (an online estimate of the top principal direction);
- every warm-up round: ``i* = argmax_{i∈H} ⟨g_i, z⟩`` (first index on ties); after the
  warm-up i* is frozen and the attackers keep copying that client. Default ``warmup = 1``
  (official ``--mimic-warmup``): i* is chosen in the first round and kept.

Conventions. The official code works on gradients ``g``; on deltas ``Δ ≈ −lr·g`` the power
step gives the same ``z`` (it is quadratic in the rows), and ``argmax ⟨g_i, z⟩`` is
``argmax ⟨−Δ_i, z⟩``, which is what is computed. ``z₀`` comes from the round's adversary
generator (the official code seeds it with 0). A zero power step (identical candidates) keeps
the previous ``z``. i* is kept as a *client id* (the view's ``own_ids``/``benign_ids``), so the
attackers follow that client under partial participation too; in a round where i* is not among
the candidates (not sampled), they copy that round's argmax along ``z`` and keep i* for the
next rounds (the paper samples every client, so it never says). A view without client ids (one
built by hand) falls back to the position among the candidate rows. The state (round count,
``μ``, ``z``, i*) is checkpointed (:meth:`Mimic.state_dict`), so a resumed run keeps i*.

Candidates: ``knowledge="all"`` = the benign updates (the paper's omniscient attacker);
``knowledge="own"`` = the attackers' own honest updates (FLPoison's default, ``choice = 0``,
copies an attacker's own update). ``target=j`` copies candidate row ``j`` every round (ByzFL's
and byzpy's ``epsilon``, FLPoison's ``choice``). Never a silent row 0: ``"auto"`` by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import normal, repeat_rows
from fedpoison.attacks.threat import Knowledge


def power_step(honest: torch.Tensor, mu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``Σ_i ⟨g_i − μ, z⟩ (g_i − μ)`` normalised to unit length, without forming ``g_i − μ``;
    ``z`` itself when the step is zero."""
    w = honest @ z - mu @ z
    step = w @ honest - w.sum() * mu
    norm = torch.linalg.vector_norm(step)
    return step / norm if norm > 0 else z


def mimic_init(honest: torch.Tensor, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Round 0: ``(μ, z)`` = the candidates' mean and one power step from ``z₀``."""
    mu = honest.mean(dim=0)
    z0 = z0 / torch.linalg.vector_norm(z0).clamp_min(torch.finfo(z0.dtype).tiny)
    return mu, power_step(honest, mu, z0)


def mimic_update(
    honest: torch.Tensor, mu: torch.Tensor, z: torch.Tensor, t: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warm-up round ``t ≥ 1``: the running mean and the running, renormalised direction."""
    mu = (t * mu + honest.mean(dim=0)) / (t + 1)
    z = (t * z + power_step(honest, mu, z)) / (t + 1)
    return mu, z / torch.linalg.vector_norm(z).clamp_min(torch.finfo(z.dtype).tiny)


def mimic_choice(honest: torch.Tensor, z: torch.Tensor) -> int:
    """``argmax_i ⟨−Δ_i, z⟩`` (the official ``argmax ⟨g_i, z⟩`` on deltas; first on ties)."""
    return int(torch.argmax(-(honest @ z)))


def mimic_attack(honest: torch.Tensor, num_malicious: int, target: int) -> torch.Tensor:
    """``m`` copies of candidate row ``target``.

    Example:

        >>> import torch
        >>> from fedpoison.attacks import mimic_attack
        >>> mimic_attack(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 2, target=1).tolist()
        [[3.0, 4.0], [3.0, 4.0]]
    """
    k = honest.shape[0]
    if not 0 <= target < k:
        raise ValueError(f"mimic: target row {target} is not among the round's {k} candidates")
    return repeat_rows(honest[target], num_malicious)


@UPDATE_ATTACKS.register("mimic")
class Mimic(UpdateAttack):
    """Mimic: all attackers copy one honest client's update (module docstring).

    Args:
        target: ``"auto"`` = the official choice along the top principal direction;
            an integer ``j`` = candidate row ``j`` (ascending client id) every round.
        warmup: rounds ``T₀ ≥ 1`` over which ``"auto"`` refines its direction and choice.
        knowledge: ``all`` = candidates are the benign updates (paper); ``own`` = the
            attackers' own honest updates.
    """

    paper: ClassVar[str] = "Karimireddy et al. 2022, Bucketing (ICLR)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(
        self, target: int | str = "auto", warmup: int = 1, knowledge: Knowledge = "all"
    ) -> None:
        auto = target == "auto"
        if not auto and (isinstance(target, bool) or not isinstance(target, int) or target < 0):
            raise ValueError(f"mimic: target must be 'auto' or an integer ≥ 0, got {target!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"mimic: warmup must be an integer ≥ 1, got {warmup!r}")
        if knowledge not in ("own", "all"):
            raise ValueError(f"mimic: knowledge must be 'own' or 'all', got {knowledge!r}")
        self.target: int | None = None if auto else int(target)
        self.warmup = warmup
        self.source: Knowledge = knowledge
        self._rounds = 0
        self._mu: torch.Tensor | None = None
        self._z: torch.Tensor | None = None
        self._chosen = 0  # i*: a client id, or a row position when the view has no ids

    def required_knowledge(self) -> Knowledge:
        return self.source

    def reads_own_updates(self) -> bool:
        """Only ``knowledge=own`` copies one of the attackers' own updates."""
        return self.source == "own"

    def candidates(self, view: AdversaryView) -> torch.Tensor:
        """The rows the attackers may copy (benign for ``all``, own for ``own``)."""
        if self.source == "own":
            return view.own
        if view.benign is None:
            raise ValueError("mimic needs the benign updates; set threat.knowledge=all")
        return view.benign

    def candidate_ids(self, view: AdversaryView) -> tuple[int, ...] | None:
        """The candidates' client ids, when the view carries them."""
        return view.own_ids if self.source == "own" else view.benign_ids

    def choose(
        self, honest: torch.Tensor, generator: torch.Generator, ids: tuple[int, ...] | None = None
    ) -> int:
        """The candidate row to copy this round, advancing the warm-up state
        (``target="auto"``); ``ids``: the candidates' client ids (i* is kept as one)."""
        t = self._rounds
        if t == 0 or self._mu is None or self._z is None:
            z0 = normal((honest.shape[1],), generator, honest)
            self._mu, self._z = mimic_init(honest, z0)
        elif t < self.warmup:
            mu, z = self._mu.to(honest), self._z.to(honest)  # a restored state is on the CPU
            self._mu, self._z = mimic_update(honest, mu, z, t)
        best = mimic_choice(honest, self._z.to(honest))
        if t < self.warmup:
            self._chosen = best if ids is None else ids[best]
        self._rounds = t + 1
        if ids is None:
            return self._chosen
        return ids.index(self._chosen) if self._chosen in ids else best

    def state_dict(self) -> dict[str, Any]:
        """Rounds seen, the running ``μ`` and ``z`` (once set) and i*."""
        state: dict[str, Any] = {"rounds": self._rounds, "chosen": self._chosen}
        if self._mu is not None and self._z is not None:
            state |= {"mu": self._mu.detach().cpu(), "z": self._z.detach().cpu()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rounds = int(state.get("rounds", 0))
        self._chosen = int(state.get("chosen", 0))
        self._mu, self._z = state.get("mu"), state.get("z")

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        honest = self.candidates(view)
        target = self.target
        if target is None:
            target = self.choose(honest, view.generator, self.candidate_ids(view))
        return MaliciousReplies(mimic_attack(honest, view.num_malicious, target))
