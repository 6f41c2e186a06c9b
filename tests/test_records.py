"""The fast .npy codec is byte-identical to Flower's and falls back safely on odd input."""

import numpy as np
from flwr.app import Array, ArrayRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from fedpoison.records import decode, encode, to_record, to_state_dict

DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.float16])


@settings(max_examples=60, deadline=None)
@given(
    DTYPES.flatmap(
        lambda dt: arrays(dt, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    )
)
def test_encode_equals_flower_and_roundtrips(a):
    ours, theirs = encode(a), Array(a)
    assert ours.data == theirs.data and ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(decode(theirs), a)
    np.testing.assert_array_equal(ours.numpy(), a)


def test_decode_falls_back_for_fortran_order_and_lies():
    f = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(decode(Array(f)), f)
    good = Array(np.zeros((2, 2), np.float32))
    lying = Array(
        dtype="float32", shape=(4, 4), stype=good.stype, data=good.data
    )  # claims more than it holds
    assert decode(lying).shape == (2, 2)  # the bytes decide; flatten() then rejects the shape


def test_state_dict_roundtrip_copies():
    import torch

    state = {"w": torch.randn(3, 2), "n": torch.tensor(5)}
    back = to_state_dict(to_record(state))
    assert (
        list(back) == ["w", "n"]
        and torch.equal(back["w"], state["w"])
        and torch.equal(back["n"], state["n"])
    )
    back["w"] += 1  # writable copy
    assert isinstance(to_record(state), ArrayRecord)
