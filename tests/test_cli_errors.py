"""First contact: every command-line mistake is one line with exit 2; presets work anywhere;
any Hydra launcher reports failed sweep jobs; ``--version``/``--help`` name fedpoison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fedpoison_testing import compose_config, fedpoison

from fedpoison.conf import CONF_DIR
from fedpoison.config import ConfigError, validate
from fedpoison.precheck import precheck_overrides

DEFENSES = ", ".join(sorted(p.stem for p in (CONF_DIR / "defense").glob("*.yaml")))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["defence=krum"], "unknown config key or group 'defence' (did you mean 'defense'?)"),
        (
            ["+defence=krum"],
            "unknown config key 'defence' (did you mean 'defense'?); "
            "`fedpoison --help` lists the groups and keys",
        ),
        (["+foo=1"], "unknown config key 'foo'; `fedpoison --help` lists the groups and keys"),
        (
            ["defense=krumm"],
            f"defense: no option 'krumm' (did you mean 'krum'?); available: {DEFENSES}",
        ),
        (
            ["--cfg", "job", "defense=krumm"],
            f"defense: no option 'krumm' (did you mean 'krum'?); available: {DEFENSES}",
        ),
        (
            ["-m", "defense=krum,medain"],
            f"defense: no option 'medain' (did you mean 'median'?); available: {DEFENSES}",
        ),
        (
            ["-m", "+experiment=robustness_grid"],
            "experiment already has a default: choose it with experiment=NAME (no +)",
        ),
        (
            ["-m", "defense=krum", "--cfg", "job"],
            "--cfg prints one composed config and cannot be combined with -m: "
            "drop -m and give one value per key",
        ),
        (["-m", "experiment=robustness_grid"], None),
        (["--cfg", "job", "experiment=fltrust_mnist"], None),
        (["-m", "seed=range(0,50)", "defense=krum,median"], None),
    ],
)
def test_precheck_lines(argv: list[str], expected: str | None) -> None:
    assert precheck_overrides(argv) == expected


def test_unknown_top_level_key_fails_validation() -> None:
    cfg = compose_config(["+defence=krum"])
    with pytest.raises(
        ConfigError, match=r"unknown config key 'defence' \(did you mean 'defense'\?\)"
    ):
        validate(cfg)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_preset_composes_and_validates(preset: str) -> None:
    validate(compose_config([f"experiment={preset}"]))


def test_typos_on_the_command_line_are_one_line_with_exit_2(tmp_path: Path) -> None:
    out = fedpoison("+defence=krum", "--cfg", "job", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "fedpoison: error: unknown config key 'defence' (did you mean 'defense'?); "
        "`fedpoison --help` lists the groups and keys"
    ]
    assert not (tmp_path / "outputs").exists()


def test_presets_work_from_any_directory(tmp_path: Path) -> None:
    out = fedpoison("experiment=fltrust_mnist", "--cfg", "job", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "q: 0.5" in out.stdout and "procedure: official" in out.stdout


def test_version_and_help_name_fedpoison() -> None:
    version = fedpoison("--version")
    assert version.returncode == 0 and version.stdout.startswith("fedpoison 0.1.0 (flwr 1.42")
    assert "Hydra" not in version.stdout
    helped = fedpoison("--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("fedpoison: federated-learning simulation")
    assert "powered by Hydra" not in helped.stdout and "defense: " in helped.stdout


LAUNCHERS = [
    pytest.param("basic", None, id="basic"),
    pytest.param("joblib", "hydra_plugins.hydra_joblib_launcher", id="joblib"),
    pytest.param("submitit_local", "hydra_plugins.hydra_submitit_launcher", id="submitit_local"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("launcher", "plugin"), LAUNCHERS)
def test_a_failed_sweep_job_fails_the_sweep_under_any_launcher(
    tmp_path: Path, launcher: str, plugin: str | None
) -> None:
    if plugin is not None and importlib.util.find_spec(plugin) is None:
        pytest.skip(
            f"{plugin} is not installed (pip install hydra-{launcher.split('_')[0]}-launcher)"
        )
    sweep = tmp_path / "sweep"
    out = fedpoison(
        "-m",
        f"hydra/launcher={launcher}",
        "defense=krum,fedavg",
        "threat.num_malicious=9",
        "num_rounds=2",
        "progress=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert out.returncode == 2, out.stderr
    krum = sweep / "krum-alie-f9-seed0-num_rounds=2"
    message = (
        "krum: needs n ≥ 2f+3 = 21, got n=20, f=9 (with 20 clients per round); "
        "sample more clients, lower threat.num_malicious or set defense.f"
    )
    summary = (
        out.stderr[out.stderr.index("fedpoison: 1 job(s) of the sweep failed:") :]
        .strip()
        .splitlines()
    )
    assert summary == ["fedpoison: 1 job(s) of the sweep failed:", f"  {krum}: {message}"]
    fedavg = json.loads((sweep / "fedavg-alie-f9-seed0-num_rounds=2" / "results.json").read_text())
    assert fedavg["status"] == "complete"
    assert (
        krum / ".hydra" / "overrides.yaml"
    ).exists()  # the report lists it as failed before round 1
    assert not list(sweep.glob(".fedpoison-failed-jobs-*"))


def test_a_job_without_the_environment_finds_the_sweep_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedpoison import sweeps

    monkeypatch.delenv(sweeps.ENV, raising=False)
    failures = tmp_path / ".fedpoison-failed-jobs-123.jsonl"
    failures.write_text("")
    sweeps.record_failure(tmp_path / "krum-alie-f9-seed0", 2, "krum: needs n ≥ 2f+3")
    assert json.loads(failures.read_text()) == {
        "run_dir": str(tmp_path / "krum-alie-f9-seed0"),
        "code": 2,
        "message": "krum: needs n ≥ 2f+3",
    }
    monkeypatch.setenv(sweeps.ENV, str(failures))
    assert sweeps.report_failures() == 2 and not failures.exists()
