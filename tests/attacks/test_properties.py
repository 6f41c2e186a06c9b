"""Properties every update attack satisfies: shape, dtype, determinism, inputs untouched."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedpoison.attacks import UPDATE_ATTACKS, MaliciousReplies


@pytest.mark.parametrize("name", UPDATE_ATTACKS.names())
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    m=st.integers(1, 3),
    extra=st.integers(3, 6),
    d=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    double=st.booleans(),
)
def test_update_attack_contract(
    name: str, m: int, extra: int, d: int, seed: int, double: bool, make_view, median_defense
) -> None:
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(seed)
    own = torch.randn(m, d, generator=g, dtype=dtype)
    benign = torch.randn(2 * m + extra, d, generator=g, dtype=dtype)  # n ≥ 2m+3 for Krum
    own0, benign0 = own.clone(), benign.clone()
    attack = UPDATE_ATTACKS.get(name)()

    def run() -> MaliciousReplies:
        view = make_view(own, benign, knows_defense=True, defense=median_defense, f=m, seed=seed)
        return attack.craft(view)

    first, second = run(), run()
    assert first.updates.shape == (m, d)
    assert first.updates.dtype == dtype and first.updates.device == own.device
    assert torch.isfinite(first.updates).all()
    assert torch.equal(first.updates, second.updates)
    assert (first.num_examples is None) == (second.num_examples is None)
    assert torch.equal(own, own0) and torch.equal(benign, benign0)
    assert first.updates.data_ptr() not in (own.data_ptr(), benign.data_ptr())
