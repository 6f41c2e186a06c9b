"""The fast .npy codec is byte-identical to Flower's and falls back safely on odd input."""

import numpy as np
from flwr.app import Array, ArrayRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from fedpoison.records import decode, encode, stacked_records, to_record, to_state_dict

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


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        DTYPES.flatmap(
            lambda dt: arrays(dt, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        ),
        max_size=4,
    )
)
def test_direct_instances_equal_flowers_constructed_ones(arrays_):
    """encode/to_record skip Flower's constructors: the instances must be the ones they build
    (instance dicts, equality, object ids) — a Flower upgrade that changes them fails here."""
    import torch

    state = {f"layer{i}": torch.from_numpy(a.copy()) for i, a in enumerate(arrays_)}
    theirs = ArrayRecord()
    for name, tensor in state.items():
        theirs[name] = Array(tensor.numpy())
    ours = to_record(state)
    assert vars(ours).keys() == vars(theirs).keys() and ours == theirs
    for name in state:
        assert vars(ours[name]) == vars(theirs[name])
    assert ours.object_id == theirs.object_id and vars(ours) == vars(theirs)


def test_unflatten_builds_the_record_setitem_builds():
    import torch

    from fedpoison.training.flat import ModelLayout, flatten, unflatten

    record = to_record({"w": torch.randn(3, 2), "b": torch.randn(2)})
    layout = ModelLayout.of(record)
    again = unflatten(flatten(record, layout), layout)
    assert again == record and again.object_id == record.object_id


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 5),
    st.lists(array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3), min_size=1, max_size=3),
    st.sampled_from(["float32", "float64", "int64"]),
)
def test_stacked_records_equal_each_clients_to_record(k, shapes, dtype):
    """Bulk conversion == converting each client's state alone (parameters stacked, a buffer
    expanded with stride 0, 0-d entries)."""
    import torch

    gen = torch.Generator().manual_seed(k)
    stacked = {
        f"p{i}": (torch.randn(k, *shape, generator=gen) * 100).to(getattr(torch, dtype))
        for i, shape in enumerate(shapes)
    }
    stacked["buffer"] = torch.arange(3.0).expand(k, 3)
    records = stacked_records(stacked)
    assert len(records) == k
    for j, record in enumerate(records):
        alone = to_record({name: tensor[j] for name, tensor in stacked.items()})
        assert record == alone and vars(record) == vars(alone)


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["num-examples", "train-loss", "loss", "accuracy", "partition-id"]),
        st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False)),
        max_size=4,
    ),
    st.integers(1, 50),
)
def test_direct_reply_equals_flowers_constructed_one(values, node):
    """new_metrics/new_content/reply_message skip Flower's constructors' checks: the metric
    record, the content and the reply (metadata included, at one clock reading) must be what
    ``MetricRecord(...)``, ``RecordDict(...)`` and ``Message(content, reply_to=...)`` build."""
    import datetime
    from unittest import mock

    from flwr.app import Message, MetricRecord, RecordDict

    from fedpoison import records
    from fedpoison.engines.flower_internals import set_server_identity

    set_server_identity(7)
    asked = Message(RecordDict(), node, "train", group_id="3")
    asked.metadata.__dict__["_message_id"] = "ab" * 16
    theirs_metrics = MetricRecord(dict(values))
    ours_metrics = records.new_metrics(dict(values))
    assert vars(ours_metrics) == vars(theirs_metrics)
    assert ours_metrics.object_id == theirs_metrics.object_id
    arrays = to_record({})
    theirs = RecordDict({"arrays": arrays, "metrics": theirs_metrics})
    ours = records.new_content({"arrays": arrays, "metrics": ours_metrics})
    assert vars(ours).keys() == vars(theirs).keys() and ours == theirs
    assert list(ours) == list(theirs) and ours.object_id == theirs.object_id

    clock = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    with (
        mock.patch("flwr.app.message.message.now", return_value=clock),
        mock.patch("fedpoison.records.now", return_value=clock),
    ):
        flower = Message(theirs, reply_to=asked)
        direct = records.reply_message(ours, asked)
    assert vars(direct.metadata) == vars(flower.metadata)
    assert vars(direct).keys() == vars(flower).keys() and direct.content is ours
    assert not direct.has_error() and direct.object_id == flower.object_id


def test_direct_instruction_equals_flowers_constructed_one():
    """instruction_message is ``Message(content, node, type, group_id=...)`` at one clock
    reading: the same metadata, content and object id."""
    import datetime
    from unittest import mock

    from flwr.app import ConfigRecord, Message, RecordDict

    from fedpoison import records
    from fedpoison.engines.flower_internals import set_server_identity

    set_server_identity(5)
    content = RecordDict({"arrays": to_record({}), "config": ConfigRecord({"server-round": 2})})
    clock = datetime.datetime(2031, 5, 6, 7, 8, 9, 101112, tzinfo=datetime.UTC)
    for node, kind in [(3, "train"), (41, "evaluate"), (1, "query")]:
        with (
            mock.patch("flwr.app.message.message.now", return_value=clock),
            mock.patch("fedpoison.records.now", return_value=clock),
        ):
            flower = Message(content, node, kind, group_id="2")
            direct = records.instruction_message(content, node, kind, "2")
        assert vars(direct.metadata) == vars(flower.metadata)
        assert vars(direct) == vars(flower) and direct.object_id == flower.object_id
