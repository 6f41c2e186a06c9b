"""FedAvg: the shared rule checks, its weighting by the reported example counts (the one rule
that reads them) and the mean's weight validation."""

from __future__ import annotations

import re

import pytest
import torch
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.mean import FedAvg


class TestFedAvg(RuleTester):
    rule = FedAvg


def test_fedavg_weights_by_the_reported_example_counts() -> None:
    x = data()
    counts = torch.arange(1, 12, dtype=torch.float32) ** 3
    torch.testing.assert_close(FedAvg()(x, context(x)).aggregate, x.mean(0))
    weighted = FedAvg()(x, context(x, num_examples=counts)).aggregate
    torch.testing.assert_close(weighted, (counts.double() / counts.sum()) @ x)
    unweighted = FedAvg(weighted=False)(x, context(x, num_examples=counts))
    torch.testing.assert_close(unweighted.aggregate, x.mean(0))


def test_mean_weights_are_validated() -> None:
    x = data(3)
    torch.testing.assert_close(agg.mean(x, torch.tensor([1.0, 0.0, 1.0])), (x[0] + x[2]) / 2)
    for bad in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]):
        with pytest.raises(ValueError, match="mean: weights"):
            agg.mean(x, torch.tensor(bad))


def test_mean_refuses_bad_dtypes_and_non_finite() -> None:
    with pytest.raises(ValueError, match="2-D floating"):
        agg.mean(torch.ones(3, 2, dtype=torch.int64))
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("NaN/Inf in rows [2]")):
        agg.mean(x)
