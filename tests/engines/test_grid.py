"""The in-process Grid: persistent per-node contexts, node_config, error replies."""

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedpoison.engines.grid import InlineGrid


def _app() -> ClientApp:
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        if pid == 2:
            raise RuntimeError("client 2 crashed")
        calls = int(context.state["count"]["n"]) + 1 if "count" in context.state else 1
        context.state["count"] = MetricRecord({"n": calls})
        metrics = MetricRecord(
            {
                "pid": pid,
                "calls": calls,
                "num-partitions": int(context.node_config["num-partitions"]),
            }
        )
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def test_grid_runs_client_app_keeps_contexts_and_reports_errors():
    grid = InlineGrid(_app(), num_nodes=4)
    assert list(grid.get_node_ids()) == [1, 2, 3, 4]
    assert grid.partition_ids() == {1: 0, 2: 1, 3: 2, 4: 3}
    for expected_calls in (1, 2):
        msgs = [Message(RecordDict(), node, "train", group_id="r") for node in (1, 3, 4)]
        replies = list(grid.send_and_receive(msgs))
        assert [r.metadata.src_node_id for r in replies] == [1, 3, 4]
        ok = [r for r in replies if not r.has_error()]
        assert [int(r.content["metrics"]["calls"]) for r in ok] == [expected_calls, expected_calls]
        assert [int(r.content["metrics"]["num-partitions"]) for r in ok] == [4, 4]
        bad = [r for r in replies if r.has_error()]
        assert len(bad) == 1 and "client 2 crashed" in bad[0].error.reason


def test_push_then_pull_and_unknown_node():
    grid = InlineGrid(_app(), num_nodes=2)
    ids = list(grid.push_messages([Message(RecordDict(), 1, "train", group_id="r")]))
    replies = list(grid.pull_messages(ids))
    assert len(replies) == 1 and replies[0].metadata.reply_to_message_id == ids[0]
    try:
        grid.push_messages([Message(RecordDict(), 9, "train", group_id="r")])
    except ValueError as exc:
        assert "unknown node" in str(exc)
    else:
        raise AssertionError("message to unknown node accepted")
