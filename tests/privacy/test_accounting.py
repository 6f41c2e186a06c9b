"""The accountant: ε grows with rounds, falls with z, and equals Opacus' own accountant."""

from __future__ import annotations

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from fedpoison.privacy.accounting import Release, epsilon


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    release = Release(1.0, 0.1)
    by_round = [epsilon(release, r, 1e-5) for r in (1, 5, 20, 100)]
    assert by_round == sorted(by_round) and by_round[0] < by_round[-1]
    by_noise = [epsilon(Release(z, 0.1), 50, 1e-5) for z in (0.5, 1.0, 2.0, 4.0)]
    assert by_noise == sorted(by_noise, reverse=True) and by_noise[0] > by_noise[-1]
    assert epsilon(release, 0, 1e-5) == 0.0


@pytest.mark.parametrize(
    "z, q, steps, rounds", [(1.0, 0.1, 1, 30), (0.8, 1.0, 1, 10), (1.3, 0.02, 5, 40)]
)
def test_rdp_matches_stepping_opacus_directly(z: float, q: float, steps: int, rounds: int) -> None:
    direct = RDPAccountant()
    for _ in range(rounds * steps):
        direct.step(noise_multiplier=z, sample_rate=q)
    ours = epsilon(Release(z, q, steps), rounds, 1e-5, "rdp")
    assert ours == pytest.approx(direct.get_epsilon(delta=1e-5), rel=1e-12)


def test_prv_matches_stepping_opacus_directly() -> None:
    direct = PRVAccountant()
    for _ in range(25):
        direct.step(noise_multiplier=1.1, sample_rate=0.05)
    assert epsilon(Release(1.1, 0.05), 25, 1e-5, "prv") == pytest.approx(
        direct.get_epsilon(delta=1e-5), rel=1e-6
    )


def test_the_accountants_are_imported_by_check_before_round_one() -> None:
    """Opacus' import (~1.7 s) happens in the mechanism's ``check`` (before round 1), not in
    round 1's ``spent``."""
    import subprocess
    import sys

    code = (
        "import sys, torch; from fedpoison.privacy import CentralDP, Setting; "
        "from fedpoison.training.local import LocalTraining; "
        "dp = CentralDP(); assert 'opacus.accountants' not in sys.modules; "
        "dp.check(Setting(20, 10, 50, torch.nn.Linear(2, 2), LocalTraining())); "
        "assert 'opacus.accountants' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
