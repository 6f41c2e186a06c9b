"""Local DP: every client clips and noises its own update before sending it (``privacy=local``).

Each client releases Δ̃_i = Δ_i·min(1, C/‖Δ_i‖) + N(0, (z·C)²·I), i.e. the Gaussian mechanism
with sensitivity C applied by the client itself (as in DP-FedAvg's "local" variant and
Flower's ``LocalDpMod``), so even the server learns only a z-noised update. The accountant
charges every client one release with multiplier z per round it is sampled in (rate
clients per round / population); ε is per client.

It is a Flower ClientApp mod, like ``flwr.clientapp.mod.LocalDpMod``, which it replaces
because that mod draws its noise from NumPy's global RNG (not reproducible per seed, round
and client) and calibrates it with the classic (ε, δ) Gaussian formula per round, valid only
for ε < 1 and without composition. Replies the mod cannot read (another reply attack broke
them) pass through untouched for the server's validation to reject. Update attacks are
crafted by the simulated adversary after the replies: malicious clients do not follow the
protocol, so their crafted rows carry no noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.clientapp.typing import Mod

from fedpoison.aggregators._linalg import clip_factors
from fedpoison.privacy.accounting import Release
from fedpoison.privacy.base import DifferentialPrivacy, Setting, positive
from fedpoison.protocol import PARTITION_ID, SERVER_ROUND
from fedpoison.records import record_of
from fedpoison.seeding import PRIVACY, torch_generator
from fedpoison.training.flat import ModelLayout, flatten, unflatten


def privatise(
    received: ArrayRecord,
    reply: ArrayRecord,
    clip_norm: float,
    noise_multiplier: float,
    generator: torch.Generator,
) -> ArrayRecord:
    """``received + clip(reply − received) + N(0, (z·C)²)`` in the global model's layout
    (float64 arithmetic); ``ValueError`` when the reply does not match that layout."""
    layout = ModelLayout.of(received)
    before = flatten(received, layout).to(torch.float64)
    delta = flatten(reply, layout).to(torch.float64) - before
    delta = delta * clip_factors(delta.unsqueeze(0), clip_norm)[0]
    noise = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
    return unflatten(before + delta + noise_multiplier * clip_norm * noise, layout)


class LocalDP(DifferentialPrivacy):
    """Client-side clipping + Gaussian noise (``privacy=local``).

    Args:
        clip_norm: C, the L2 bound each client clips its update to.
        noise_multiplier: z; the client's noise std is z·C.
        delta, accountant: see :class:`DifferentialPrivacy`.
    """

    name = "local"

    def __init__(
        self,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        delta: float = 1e-5,
        accountant: str = "rdp_wor",
    ) -> None:
        super().__init__(noise_multiplier, delta, accountant)
        self.clip_norm = positive(clip_norm, "clip_norm")

    def check(self, setting: Setting) -> None:
        self._check_delta(setting.num_clients, "clients")
        self._set_release(
            Release(self.noise_multiplier, setting.clients_per_round, setting.num_clients)
        )

    def client_mods(self, seed: int) -> list[Mod]:
        return [LocalDPMod(self.clip_norm, self.noise_multiplier, seed)]


@dataclass(frozen=True)
class LocalDPMod:
    """The ClientApp mod of :class:`LocalDP` (picklable, for Ray workers)."""

    clip_norm: float
    noise_multiplier: float
    seed: int

    def __call__(
        self, msg: Message, context: Context, call_next: Callable[[Message, Context], Message]
    ) -> Message:
        reply = call_next(msg, context)
        if msg.metadata.message_type != "train" or reply.has_error():
            return reply
        sent = reply.content.get("arrays")
        if not isinstance(sent, ArrayRecord):
            return reply  # no (readable) arrays: the server's validation rejects the reply
        server_round = int(record_of(msg.content, "config", ConfigRecord)[SERVER_ROUND])  # type: ignore[arg-type]
        gen = torch_generator(
            self.seed, PRIVACY, server_round, int(context.node_config[PARTITION_ID])
        )
        try:
            noisy = privatise(
                record_of(msg.content, "arrays", ArrayRecord),
                sent,
                self.clip_norm,
                self.noise_multiplier,
                gen,
            )
        except (ValueError, TypeError, KeyError, RuntimeError):
            return reply  # an unreadable (attacked) reply: the server's validation rejects it
        reply.content["arrays"] = noisy
        return reply
