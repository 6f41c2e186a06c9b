"""The report's 95 % Student-t interval and what its figures draw and say."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fedpoison.report.collect import load_study
from fedpoison.report.plots import accuracy_vs_round, heatmap
from fedpoison.report.summary import Summary, mean_t_interval

# 0.975 quantile of Student's t by its closed forms: 1 degree of freedom is the Cauchy law,
# F⁻¹(p) = tan(π(p − ½)); 2 degrees of freedom have F⁻¹(p) = (2p − 1) / √(2p(1 − p)).
T_975 = {2: math.tan(0.475 * math.pi), 3: 0.95 / math.sqrt(2 * 0.975 * 0.025)}  # by n = seeds


def test_closed_forms_are_the_textbook_values():
    assert T_975[2] == pytest.approx(12.706, abs=5e-4)
    assert T_975[3] == pytest.approx(4.303, abs=5e-4)


def test_mean_t_interval_per_column_over_the_values_present():
    curve = np.array([[0.1, 0.5, 0.7], [0.3, 0.6, math.nan], [0.5, math.nan, math.nan]])
    mean, half = mean_t_interval(curve)
    assert mean == pytest.approx([0.3, 0.55, 0.7])
    assert half[0] == pytest.approx(T_975[3] * 0.2 / math.sqrt(3))  # s of 0.1, 0.3, 0.5 = 0.2
    assert half[1] == pytest.approx(T_975[2] * math.sqrt(0.005) / math.sqrt(2))
    assert math.isnan(half[2])  # one value: no interval


def test_round_band_is_the_t_interval_and_the_figure_says_so(tmp_path, run_writer):
    for seed, accuracy in enumerate((0.80, 0.84)):  # every round: these two values − 0.1·k
        run_writer(tmp_path, defense="fedavg", attack="none", seed=seed, accuracy=accuracy)
    run_writer(tmp_path, defense="fedavg", attack="alie", seed=0, accuracy=0.5)
    fig = accuracy_vs_round(Summary(load_study(tmp_path).runs))
    (ax,) = fig.axes
    one_seed, two_seeds = ax.collections  # alie (one seed) sorts first
    (path,) = two_seeds.get_paths()
    last = path.vertices[path.vertices[:, 0] == 3, 1]  # the band's edges at the last round
    half = T_975[2] * np.std([0.80, 0.84], ddof=1) / math.sqrt(2)
    assert (last.min(), last.max()) == pytest.approx((0.82 - half, 0.82 + half))
    assert one_seed.get_paths() == []  # no band for one seed
    assert "95 % t-interval over seeds" in fig.get_suptitle()


def _grid(root: Path, run_writer, counts: tuple[int, ...]) -> Summary:
    for f in counts:
        for attack in ("none", "alie"):
            run_writer(root, defense="fedavg", attack=attack, seed=0, f=f, accuracy=0.9 - 0.1 * f)
    return Summary(load_study(root).runs)


def test_heatmap_names_the_pool_size_in_words_not_f(tmp_path, run_writer):
    summary = _grid(tmp_path, run_writer, (1, 4))
    titles = [ax.get_title() for ax in heatmap(summary).axes if ax.get_title()]
    assert titles == ["digits, 1 malicious client", "digits, 4 malicious clients"]
    legend = accuracy_vs_round(summary).axes[0].get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert "none / 4 malicious clients" in labels
    assert not any("f=" in label or "f =" in label for label in labels)
