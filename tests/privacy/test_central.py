"""Central DP: clipping bounds every row, noise std is z·C/n, adaptive clipping follows
Andrew et al."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.models.simple import mlp
from fedpoison.privacy import CentralDP, Setting
from fedpoison.training.local import LocalTraining


def setting(num_clients: int = 20, per_round: int = 10) -> Setting:
    return Setting(num_clients, per_round, 50, mlp((1, 8, 8), 10), LocalTraining())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 30),
    scale=st.floats(1e-3, 1e3),
    clip=st.floats(1e-2, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_clip_bounds_every_row_and_keeps_short_rows(
    n: int, d: int, scale: float, clip: float, seed: int
) -> None:
    x = (
        torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        * scale
    )
    before = x.clone()
    dp = CentralDP(clip_norm=clip)
    clipped, info = dp.clip(x)
    assert torch.equal(x, before)  # inputs unchanged
    norms, new_norms = x.norm(dim=1), clipped.norm(dim=1)
    assert bool((new_norms <= clip * (1 + 1e-9)).all())
    short = norms <= clip
    assert torch.equal(clipped[short], x[short])
    # Long rows keep their direction and land on the sphere of radius C.
    long = ~short
    assert torch.allclose(new_norms[long], torch.full_like(new_norms[long], clip))
    assert torch.allclose(clipped[long] / new_norms[long, None], x[long] / norms[long, None])
    assert info == {"dp_clip_norm": clip, "dp_clipped": int(long.sum())}


@pytest.mark.parametrize("z, clip, n", [(1.0, 1.0, 10), (0.5, 3.0, 7), (2.0, 0.1, 50)])
def test_noise_std_is_z_times_clip_over_n(z: float, clip: float, n: int) -> None:
    dp = CentralDP(clip_norm=clip, noise_multiplier=z)
    dp.check(setting())
    aggregate = torch.zeros(200_000, dtype=torch.float64)
    noisy = dp.noise(aggregate, n, torch.Generator().manual_seed(3))
    expected = z * clip / n
    assert noisy.mean().abs() < 5 * expected / math.sqrt(noisy.numel())
    assert noisy.std().item() == pytest.approx(
        expected, rel=0.01
    )  # 1% ≈ 6 standard errors at 2e5 draws
    again = dp.noise(aggregate, n, torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)  # same generator ⇒ same noise


def test_adaptive_clipping_follows_the_geometric_update() -> None:
    """C ← C·exp(−η_C(b̄ − γ)), b̄ = (Σ b_i + σ_b·ξ)/n, with ξ the draw after the update noise."""
    dp = CentralDP(
        clip_norm=1.0, noise_multiplier=1.0, target_quantile=0.5, clip_lr=0.2, clip_count_stddev=2.0
    )
    dp.check(setting())
    # z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (Andrew et al. 2021, Thm. 1).
    assert dp.update_noise_multiplier == pytest.approx((1.0 - 1 / 16) ** -0.5)
    rows = torch.tensor([[0.5, 0.0], [0.0, 0.9], [3.0, 4.0], [0.1, 0.1]], dtype=torch.float64)
    dp.clip(rows)  # 3 of 4 rows have norm ≤ 1
    gen = torch.Generator().manual_seed(11)
    dp.noise(torch.zeros(2, dtype=torch.float64), 4, gen)
    replay = torch.Generator().manual_seed(11)
    torch.randn(2, generator=replay, dtype=torch.float64)
    xi = float(torch.randn((), generator=replay))
    expected = math.exp(-0.2 * ((3 + 2.0 * xi) / 4 - 0.5))
    assert dp.clip_norm == pytest.approx(expected)
    restored = CentralDP(clip_norm=1.0, target_quantile=0.5)
    restored.load_state_dict(dp.state_dict())
    assert restored.clip_norm == dp.clip_norm


def test_adaptive_clip_norm_shrinks_when_every_update_is_short() -> None:
    dp = CentralDP(clip_norm=10.0, noise_multiplier=0.5, target_quantile=0.5, clip_count_stddev=0.5)
    dp.check(setting())
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        dp.clip(torch.full((10, 3), 0.01, dtype=torch.float64))
        dp.noise(torch.zeros(3, dtype=torch.float64), 10, gen)
    assert dp.clip_norm < 10.0 * math.exp(-0.2 * 0.3 * 20)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier must be > 0"),
        ({"noise_multiplier": -1.0}, "noise_multiplier must be > 0"),
        ({"clip_norm": 0.0}, "clip_norm must be > 0"),
        ({"delta": 1.0}, "delta must be in"),
        ({"target_quantile": 1.5}, "target_quantile"),
        ({"accountant": "moments"}, "accountant must be one of"),
    ],
)
def test_impossible_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CentralDP(**kwargs)  # type: ignore[arg-type]


def test_delta_must_be_below_one_over_the_population() -> None:
    with pytest.raises(ValueError, match=r"privacy.delta=0.1 must be < 1/20"):
        CentralDP(delta=0.1).check(setting(num_clients=20))


def test_adaptive_needs_enough_count_noise() -> None:
    with pytest.raises(ValueError, match="2·privacy.clip_count_stddev > privacy.noise_multiplier"):
        CentralDP(noise_multiplier=2.0, target_quantile=0.5, clip_count_stddev=0.5).check(setting())
