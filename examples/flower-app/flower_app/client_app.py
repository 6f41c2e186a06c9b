"""The ClientApp: Flower's quickstart shape, nothing fedpoison-specific in the handlers; a
client-side attack (``client-attack`` in the run config) is a fedpoison mod around them."""

from __future__ import annotations

import functools

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable

import fedpoison
from fedpoison.clients import PoisonMod
from flower_app.task import load_partition, new_model, test, train


@functools.cache
def _poison(attack: str, num_malicious: int, num_partitions: int, seed: int) -> PoisonMod:
    return fedpoison.poison_mod(
        attack, num_malicious=num_malicious, num_partitions=num_partitions, seed=seed
    )


def client_attack(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """``fedpoison.poison_mod`` as the run config asks (``client-attack="none"``: honest)."""
    cfg = context.run_config
    if cfg["client-attack"] == "none":
        return call_next(msg, context)
    n = int(context.node_config["num-partitions"])
    mod = _poison(str(cfg["client-attack"]), int(cfg["num-malicious"]), n, int(cfg["seed"]))
    return mod(msg, context, call_next)


app = ClientApp(mods=[client_attack])


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
    """Train the received model on this node's partition; reply arrays + num-examples."""
    net = new_model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = load_partition(
        int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    )
    cfg = context.run_config
    loss = train(net, x, y, int(cfg["local-steps"]), float(cfg["lr"]))
    metrics = MetricRecord({"train-loss": loss, "num-examples": len(y)})
    content = RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics})
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate_handler(msg: Message, context: Context) -> Message:
    """Evaluate the received model on this node's partition."""
    net = new_model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = load_partition(
        int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    )
    loss, accuracy = test(net, x, y)
    metrics = MetricRecord({"loss": loss, "accuracy": accuracy, "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
