"""The update-matrix round trip: records → flat vectors → deltas → weights."""

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

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


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # both paths
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from([np.float32, np.float64, np.int64, np.float16]).flatmap(
            lambda dt: arrays(dt, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        ),
        min_size=1,
        max_size=4,
    )
)
def test_flatten_equals_flowers_decoding_concatenated(parts):
    """The header-checked fast path reads exactly what ``Array.numpy()`` parses."""
    record = ArrayRecord({f"a{i}": Array(p) for i, p in enumerate(parts)})
    naive = np.concatenate([record[k].numpy().reshape(-1).astype(np.float32) for k in record])
    np.testing.assert_array_equal(flatten(record, ModelLayout.of(record)).numpy(), naive)


def test_flatten_checks_what_a_record_claims_against_its_bytes():
    rec = _record()
    layout = ModelLayout.of(rec)
    first = next(iter(rec))
    real = rec[first]
    wrong = ArrayRecord({k: rec[k] for k in rec})
    # claims the layout's shape, holds another array's bytes: the header decides, and is refused
    other = Array(np.zeros(7, dtype=np.float32))
    wrong[first] = Array(
        dtype=real.dtype, shape=tuple(real.shape), stype=real.stype, data=other.data
    )
    with pytest.raises(ValueError, match="shape"):
        flatten(wrong, layout)
    # float64 bytes of the right shape: refused by dtype, not cast
    wrong[first] = Array(real.numpy().astype(np.float64))
    with pytest.raises(ValueError, match="dtype"):
        flatten(wrong, layout)
