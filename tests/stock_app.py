"""A stock Flower app, written the way Flower's PyTorch quickstart writes one: no fedpoison
handler, replies with ``arrays`` and ``metrics["num-examples"]``. Tests run server mains
against it on fedpoison's in-process grid (fast) or on Flower's own ``run_simulation``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedpoison.engines.grid import InlineGrid
from fedpoison.engines.inline import server_context

NUM_NODES = 6
ServerMain = Callable[[Grid], None]


def model() -> torch.nn.Module:
    """The app's model, with fixed initial weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


@functools.cache
def digits(partition: int) -> tuple[torch.Tensor, torch.Tensor]:
    """100 scikit-learn digits per partition (partition 17 is the last full one)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    part = slice(partition * 100, (partition + 1) * 100)
    return torch.tensor(x[part] / 16.0, dtype=torch.float32), torch.tensor(y[part])


def flat(arrays: ArrayRecord) -> torch.Tensor:
    """The model in ``arrays`` as one vector."""
    return torch.cat([t.reshape(-1) for t in arrays.to_torch_state_dict().values()])


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Flower's quickstart shape: load, train a few steps, reply arrays + num-examples."""
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = digits(int(context.node_config["partition-id"]))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    content = RecordDict(
        {
            "arrays": ArrayRecord(net.state_dict()),
            "metrics": MetricRecord({"num-examples": len(y)}),
        }
    )
    return Message(content=content, reply_to=msg)


@client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Local accuracy and loss of the received model."""
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = digits(int(context.node_config["partition-id"]))
    with torch.no_grad():
        logits = net(x)
    metrics = {
        "accuracy": float((logits.argmax(1) == y).float().mean()),
        "loss": float(torch.nn.functional.cross_entropy(logits, y)),
        "num-examples": len(y),
    }
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


def server_app(main: ServerMain) -> ServerApp:
    """A ServerApp whose ``@app.main()`` calls ``main(grid)``."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        main(grid)

    return app


def run_inline(main: ServerMain) -> None:
    """``main`` on fedpoison's in-process grid (one torch thread, as engine=inline uses)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        server_app(main)(InlineGrid(client_app, NUM_NODES), server_context())
    finally:
        torch.set_num_threads(previous)


def run_flower(main: ServerMain) -> None:
    """``main`` on Flower's own ``run_simulation`` (Ray), offline."""
    from flwr.simulation import run_simulation

    run_simulation(
        server_app=server_app(main),
        client_app=client_app,
        num_supernodes=NUM_NODES,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"include_dashboard": False, "log_to_driver": False},
        },
    )
