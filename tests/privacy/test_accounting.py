"""The accountants: ε grows with rounds, falls with z, and equals each library's own number."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from fedpoison.privacy.accounting import ACCOUNTANTS, Release, epsilon

needs_dp_accounting = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import dp_accounting"], capture_output=True).returncode,
    reason="rdp_wor needs dp-accounting (pip install 'flwr[dp]')",
)


@pytest.mark.parametrize(
    "accountant", [pytest.param("rdp_wor", marks=needs_dp_accounting), "rdp", "prv"]
)
def test_epsilon_grows_with_rounds_and_falls_with_noise(accountant: str) -> None:
    release = Release(1.0, 10, 100)
    by_round = [epsilon(release, r, 1e-5, accountant) for r in (1, 5, 20, 100)]
    assert by_round == sorted(by_round) and by_round[0] < by_round[-1]
    by_noise = [epsilon(Release(z, 10, 100), 50, 1e-5, accountant) for z in (0.7, 1.0, 2.0, 4.0)]
    assert by_noise == sorted(by_noise, reverse=True) and by_noise[0] > by_noise[-1]
    assert epsilon(release, 0, 1e-5, accountant) == 0.0


@needs_dp_accounting
@pytest.mark.parametrize("z, m, n, steps, rounds", [(1.0, 10, 100, 1, 30), (1.5, 20, 20, 1, 10)])
def test_without_replacement_is_flowers_rdp_accountant(
    z: float, m: int, n: int, steps: int, rounds: int
) -> None:
    """``rdp_wor`` is Flower's ``RdpAccountant`` (sampling without replacement, replace-one) for
    the same releases, with the multiplier halved (replace-one sensitivity 2C), and that is
    dp-accounting's own number for the same event."""
    from dp_accounting import dp_event
    from dp_accounting.privacy_accountant import NeighboringRelation as Relation
    from dp_accounting.rdp import RdpAccountant as GoogleRdp
    from flwr.serverapp import (
        GaussianPrivacyEvent,
        NeighboringRelation,
        PrivacyConfig,
        RdpAccountant,
        SamplingMethod,
    )

    config = PrivacyConfig(
        1e-5, n, NeighboringRelation.REPLACE_ONE, SamplingMethod.WITHOUT_REPLACEMENT
    )
    flower = RdpAccountant(config)
    for _ in range(rounds * steps):
        flower.compose(GaussianPrivacyEvent(z / 2, m, n))
    google = GoogleRdp(neighboring_relation=Relation.REPLACE_ONE)
    google.compose(
        dp_event.SampledWithoutReplacementDpEvent(n, m, dp_event.GaussianDpEvent(z / 2)),
        rounds * steps,
    )
    ours = epsilon(Release(z, m, n, steps), rounds, 1e-5, "rdp_wor")
    assert ours == pytest.approx(flower.get_epsilon(1e-5), rel=1e-12)
    assert ours == pytest.approx(google.get_epsilon(1e-5), rel=1e-12)


@needs_dp_accounting
def test_without_replacement_pins_one_configuration() -> None:
    """20 of 100 clients a round, z = 1, 50 rounds, δ = 1e-5 (dp-accounting 0.6's number)."""
    ours = epsilon(Release(1.0, 20, 100), 50, 1e-5, "rdp_wor")
    assert ours == pytest.approx(94.148022553, rel=1e-9)


@pytest.mark.parametrize(
    "z, q, steps, rounds", [(1.0, 0.1, 1, 30), (0.8, 1.0, 1, 10), (1.3, 0.02, 5, 40)]
)
def test_rdp_matches_stepping_opacus_directly(z: float, q: float, steps: int, rounds: int) -> None:
    direct = RDPAccountant()
    for _ in range(rounds * steps):
        direct.step(noise_multiplier=z, sample_rate=q)
    ours = epsilon(Release(z, round(q * 100), 100, steps), rounds, 1e-5, "rdp")
    assert ours == pytest.approx(direct.get_epsilon(delta=1e-5), rel=1e-12)


def test_prv_matches_stepping_opacus_directly() -> None:
    direct = PRVAccountant()
    for _ in range(25):
        direct.step(noise_multiplier=1.1, sample_rate=0.05)
    assert epsilon(Release(1.1, 5, 100), 25, 1e-5, "prv") == pytest.approx(
        direct.get_epsilon(delta=1e-5), rel=1e-6
    )


def test_the_accountant_names() -> None:
    assert ACCOUNTANTS == ("rdp_wor", "rdp", "prv", "gdp")


@pytest.mark.parametrize(
    "accountant, module, absent",
    [
        pytest.param("rdp_wor", "dp_accounting", "opacus", marks=needs_dp_accounting),
        ("rdp", "opacus.accountants", "dp_accounting"),
    ],
)
def test_the_accountant_is_imported_by_check_before_round_one(
    accountant: str, module: str, absent: str
) -> None:
    """The accountant's library is imported in the mechanism's ``check`` (before round 1), not
    in round 1's ``spent``; the other library is not imported at all."""
    code = (
        "import sys, torch; from fedpoison.privacy import CentralDP, Setting; "
        "from fedpoison.training.local import LocalTraining; "
        f"dp = CentralDP(accountant={accountant!r}); assert {module!r} not in sys.modules; "
        "dp.check(Setting(20, 10, 50, torch.nn.Linear(2, 2), LocalTraining())); "
        f"assert {module!r} in sys.modules and {absent!r} not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
