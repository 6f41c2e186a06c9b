"""poison_mod in a stock Flower app end to end: a quickstart-style ClientApp (no fedpoison
handler) with ``mods=[poison_mod(...)]`` under Flower's own ``FedAvg``, once on fedpoison's
in-process grid (fast, with an exact oracle) and once on Flower's ``run_simulation`` (Ray;
marked ``ray`` and ``slow``)."""

from __future__ import annotations

import pytest
import stock_app
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedpoison.attacks import ThreatModel
from fedpoison.clients import poison_mod
from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.engines.grid import InlineGrid
from fedpoison.engines.inline import server_context

set_server_identity(1)
NUM_NODES, NUM_MALICIOUS, SEED = 6, 2, 0
BAD = ThreatModel(num_malicious=NUM_MALICIOUS).malicious_ids(NUM_NODES, SEED)


def _client_app(attack: str | None) -> ClientApp:
    mods = [] if attack is None else [poison_mod(attack, num_malicious=2, num_partitions=6)]
    app = ClientApp(mods=mods)
    app.train()(stock_app.train)
    return app


clean_app, flipping_app = _client_app(None), _client_app("sign_flip")


def _flat(arrays: ArrayRecord) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in arrays.to_torch_state_dict().values()])


def _server_app(out: dict, num_rounds: int) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        result = FedAvg(fraction_evaluate=0.0).start(
            grid=grid,
            initial_arrays=ArrayRecord(stock_app.model().state_dict()),
            num_rounds=num_rounds,
        )
        out["final"] = _flat(result.arrays)

    return app


def _inline(client_app: ClientApp, num_rounds: int) -> torch.Tensor:
    out: dict = {}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _server_app(out, num_rounds)(InlineGrid(client_app, NUM_NODES), server_context())
    finally:
        torch.set_num_threads(previous)
    return out["final"]


def test_fedavg_averages_the_flipped_deltas_of_the_malicious_partitions() -> None:
    clean, attacked = _inline(clean_app, 1), _inline(flipping_app, 1)
    # oracle: FedAvg (equal num-examples) of the honest models, with the malicious deltas
    # negated: attacked − clean = −2·Σ_malicious Δ_i / n
    start = ArrayRecord(stock_app.model().state_dict())
    msg = Message(
        RecordDict({"arrays": start, "config": ConfigRecord({"server-round": 1})}), 1, "train"
    )
    deltas = {
        pid: _flat(
            clean_app(msg, Context(1, pid + 1, {"partition-id": pid}, RecordDict(), {})).content[
                "arrays"
            ]
        )
        - _flat(start)
        for pid in BAD
    }
    expected = clean - 2.0 * sum(deltas.values()) / NUM_NODES
    torch.testing.assert_close(attacked, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(attacked, clean)


def _check(clean: torch.Tensor, attacked: torch.Tensor) -> None:
    start = _flat(ArrayRecord(stock_app.model().state_dict()))
    moved = (attacked - start).norm()  # 2 of 6 flipped: FedAvg moves a third as far
    assert moved < 0.8 * (clean - start).norm()
    assert (attacked - clean).norm() > moved


def test_two_rounds_on_the_in_process_grid() -> None:
    _check(_inline(clean_app, 2), _inline(flipping_app, 2))


@pytest.mark.ray
@pytest.mark.slow
def test_on_flowers_run_simulation() -> None:
    from flwr.simulation import run_simulation

    def simulate(client_app: ClientApp) -> torch.Tensor:
        out: dict = {}
        run_simulation(
            server_app=_server_app(out, 2),
            client_app=client_app,
            num_supernodes=NUM_NODES,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"include_dashboard": False, "log_to_driver": False},
            },
        )
        return out["final"]

    _check(simulate(clean_app), simulate(flipping_app))
