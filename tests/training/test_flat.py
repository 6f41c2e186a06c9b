"""The update-matrix round trip: records → flat vectors → deltas → weights."""

import numpy as np
import torch
from flwr.app import ArrayRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedpoison.training.flat import ModelLayout, flatten, unflatten, update_matrix


def _record(seed: int = 0) -> ArrayRecord:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    return ArrayRecord(model.state_dict())


def test_flatten_unflatten_is_exact_and_keeps_layout():
    rec = _record()
    layout = ModelLayout.of(rec)
    back = unflatten(flatten(rec, layout), layout)
    assert list(back.keys()) == list(rec.keys())
    for k in rec:
        assert back[k].dtype == rec[k].dtype and back[k].shape == rec[k].shape
        np.testing.assert_array_equal(back[k].numpy(), rec[k].numpy())
    assert layout.dim == 5 * 4 + 4 + 4 * 3 + 3


def test_flatten_rejects_wrong_names_and_shapes():
    rec = _record()
    layout = ModelLayout.of(rec)
    other = ArrayRecord(torch.nn.Linear(5, 3).state_dict())
    try:
        flatten(other, layout)
    except ValueError as exc:
        assert "differ" in str(exc)
    else:
        raise AssertionError("mismatched names accepted")


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, 64, elements=st.floats(0.5, 1.0, width=32)),
    arrays(np.float32, 64, elements=st.floats(0.5, 1.0, width=32)),
)
def test_weights_to_deltas_to_weights_exact_within_factor_two(w_client, w_global):
    """Sterbenz: w_c − w_g is exact in float32 when w_g/2 ≤ w_c ≤ 2·w_g, so the round trip
    is too."""
    g = torch.from_numpy(w_global)
    delta = update_matrix(torch.from_numpy(w_client)[None, :], g)
    assert torch.equal(g + delta[0], torch.from_numpy(w_client))


def test_update_matrix_shape_and_no_mutation():
    g = torch.randn(10)
    rows = [torch.randn(10) for _ in range(3)]
    copies = [r.clone() for r in rows]
    m = update_matrix(torch.stack(rows), g)
    assert m.shape == (3, 10) and m.dtype == torch.float32
    for r, c in zip(rows, copies, strict=True):
        assert torch.equal(r, c)
    assert update_matrix(torch.zeros(0, 10), g).shape == (0, 10)
