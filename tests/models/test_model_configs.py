"""Every model config composes, instantiates and builds a model for 28×28 and 32×32 inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fedpoison.models import MODELS

CONF = Path(__file__).resolve().parents[2] / "fedpoison" / "conf" / "model"
MODEL_YAMLS = sorted(CONF.glob("*.yaml"))


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=lambda p: p.stem)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_model_config_builds(path: Path, shape: tuple[int, int, int]) -> None:
    builder = instantiate(OmegaConf.load(path))
    assert builder.func is MODELS.get(path.stem)
    assert builder(shape, 10)(torch.zeros(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=lambda p: p.stem)
def test_every_field_has_a_comment(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [ln for ln in lines if ln and not ln.startswith(("#", "_")) and "#" not in ln] == []


def test_every_registered_model_has_a_config() -> None:
    assert {p.stem for p in MODEL_YAMLS} == set(MODELS.names())
