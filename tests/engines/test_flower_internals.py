"""Fails loudly when a Flower upgrade moves the internals fedpoison relies on."""

import flwr
from flwr.app import Message, RecordDict

from fedpoison.engines.flower_internals import set_server_identity


def test_flower_minor_version_is_the_pinned_one():
    assert flwr.__version__.startswith("1.42."), (
        "fedpoison pins flwr 1.42.x; re-check engines/flower_internals.py"
    )


def test_instruction_messages_can_be_created_after_setting_identity():
    run = set_server_identity(42)
    msg = Message(RecordDict(), 3, "train", group_id="1")
    assert msg.metadata.run_id == 42 and run.run_id == 42
    assert msg.metadata.dst_node_id == 3
