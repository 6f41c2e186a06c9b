"""Reply validation: faulty replies are recorded with a reason, usable ones ordered by client id."""

import math

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Error, Message, MetricRecord, RecordDict

from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.strategies.replies import collect_replies
from fedpoison.training.flat import ModelLayout

set_server_identity(1)
LAYOUT_RECORD = ArrayRecord(
    {"w": Array(np.zeros((2, 3), np.float32)), "b": Array(np.zeros(3, np.float32))}
)
LAYOUT = ModelLayout.of(LAYOUT_RECORD)


def _reply(
    node: int, arrays: ArrayRecord | None = None, num_examples=10, error: str | None = None
) -> Message:
    ins = Message(RecordDict(), node, "train", group_id="1")
    if error is not None:
        return Message(Error(code=2, reason=error), reply_to=ins)
    arrays = (
        arrays
        if arrays is not None
        else ArrayRecord(
            {
                "w": Array(np.full((2, 3), node, np.float32)),
                "b": Array(np.full(3, node, np.float32)),
            }
        )
    )
    return Message(
        RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": num_examples})}),
        reply_to=ins,
    )


def test_orders_by_client_id_not_arrival():
    nodes = {11: 1, 10: 0, 12: 2}
    out = collect_replies([_reply(12), _reply(10), _reply(11)], nodes, {0, 1, 2}, LAYOUT)
    assert out.client_ids == [0, 1, 2]
    assert [float(w[0]) for w in out.weights] == [10.0, 11.0, 12.0]
    assert out.invalid == []


def test_faults_are_recorded_not_raised():
    nodes = {10: 0, 11: 1, 12: 2, 13: 3, 14: 4, 15: 5, 16: 6}
    nan = ArrayRecord(
        {"w": Array(np.full((2, 3), math.nan, np.float32)), "b": Array(np.zeros(3, np.float32))}
    )
    wrong = ArrayRecord(
        {"w": Array(np.zeros((3, 2), np.float32)), "b": Array(np.zeros(3, np.float32))}
    )
    replies = [
        _reply(10, error="boom"),
        _reply(11, arrays=nan),
        _reply(12, arrays=wrong),
        _reply(13, num_examples=-5),
        _reply(14, num_examples=2.5),
        _reply(15),
        _reply(15),  # duplicate
        _reply(16),  # not sampled
        _reply(99),  # unknown node
    ]
    out = collect_replies(replies, nodes, {0, 1, 2, 3, 4, 5}, LAYOUT)
    assert out.client_ids == [5]
    reasons = dict((cid, why) for cid, why in out.invalid if cid in (0, 1, 2, 3, 4))
    assert "error reply" in reasons[0] and "boom" in reasons[0]
    assert reasons[1] == "non-finite weights"
    assert "shape" in reasons[2]
    assert "num-examples" in reasons[3] and "num-examples" in reasons[4]
    assert (5, "duplicate reply") in out.invalid
    assert sum(1 for _, why in out.invalid if "not sampled" in why) == 2
    assert torch.equal(out.weights[0], torch.full((9,), 15.0))


def test_a_reply_without_train_loss_adds_none_to_the_mean():
    nodes = {10: 0, 11: 1, 12: 2}
    replies = [_reply(10), _reply(11), _reply(12)]
    replies[0].content["metrics"]["train-loss"] = 0.5
    replies[2].content["metrics"]["train-loss"] = 1.5  # client 1: a skipped malicious client
    out = collect_replies(replies, nodes, {0, 1, 2}, LAYOUT)
    assert out.client_ids == [0, 1, 2] and out.train_loss == [0.5, 1.5]
    replies[1].content["metrics"]["train-loss"] = [1.0, 2.0]  # reported, not a number: NaN
    loss = collect_replies(replies, nodes, {0, 1, 2}, LAYOUT).train_loss
    assert loss[0] == 0.5 and math.isnan(loss[1]) and loss[2] == 1.5
