"""Every random stream in a run is derived from (seed, purpose, round, client id).

Engines and worker counts never change results because no stream depends on the order in
which clients are executed: each is a fresh generator keyed by what it is for.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

# Purposes: one constant each, so two streams never collide.
SAMPLING = 1  # which clients train in a round
TRAINING = 2  # a client's batch order and dropout
MALICIOUS_POOL = 3  # which client ids are malicious
PARTITION = 4  # how the training set is split
DATA_ATTACK = 5  # which samples a malicious client poisons
ADVERSARY = 6  # randomness of update attacks
DEFENSE = 7  # randomness of aggregation rules (bucketing, DnC, FLAME noise)
MODEL_INIT = 8  # initial global model
SERVER_TRAINING = 9  # FLTrust root-set training, root-set draw
FAULTS = 10  # dropouts and stragglers
REPLY_ATTACK = 11  # which fault a hostile client sends
PRIVACY = 12  # DP noise (central: per round; local DP and DP-SGD: per round and client)
EVALUATION = 13  # which clients evaluate the global model in a round (federated evaluation)
CERTIFY = 14  # test-time smoothing of the final model (CRFL's certify step)


def derive_seed(seed: int, purpose: int, *keys: int) -> int:
    """A 63-bit seed from the run seed, a purpose constant and integer keys (round, client)."""
    payload = ",".join(str(int(k)) for k in (seed, purpose, *keys)).encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little") >> 1


def torch_generator(
    seed: int, purpose: int, *keys: int, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` seeded with :func:`derive_seed`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, purpose, *keys))
    return gen


def numpy_rng(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """A NumPy ``Generator`` seeded with :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(seed, purpose, *keys))
