"""The ServerApp: fedpoison's RobustStrategy, attacked by fedpoison's Adversary."""

from __future__ import annotations

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

import fedpoison
from flower_app.task import load_test, new_model, test

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run ``num-server-rounds`` rounds of the configured rule under the configured attack."""
    cfg = context.run_config
    seed = int(cfg["seed"])
    recorder = None
    if cfg["run-dir"]:  # results.json / metrics.csv that fedpoison-report reads
        described = {"defense": {"name": cfg["rule"]}, "attack": {"name": cfg["attack"]}}
        recorder = fedpoison.RoundRecorder(str(cfg["run-dir"]), config={**described, "seed": seed})
    strategy = fedpoison.RobustStrategy(
        str(cfg["rule"]),
        fraction_train=float(cfg["fraction-train"]),
        fraction_evaluate=float(cfg["fraction-evaluate"]),
        min_available_nodes=int(cfg["min-available-nodes"]),
        recorder=recorder,
        seed=seed,
    )
    server: fedpoison.RobustStrategy | fedpoison.Adversary = strategy
    if cfg["attack"] != "none":
        server = fedpoison.Adversary(
            strategy, str(cfg["attack"]), num_malicious=int(cfg["num-malicious"]), seed=seed
        )
    x_test, y_test = load_test()
    net = new_model()

    def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        net.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = test(net, x_test, y_test)
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    result = server.start(
        grid=grid,
        initial_arrays=ArrayRecord(new_model(seed).state_dict()),
        num_rounds=int(cfg["num-server-rounds"]),
        evaluate_fn=central_evaluate,
    )
    if recorder is not None:
        recorder.complete()
    final = result.evaluate_metrics_serverapp[max(result.evaluate_metrics_serverapp)]
    print(f"fedpoison example: final accuracy {final['accuracy']:.4f}")
    for record in strategy.history:
        print(f"  round {record.round}: rejected {record.rejected}, detection {record.detection}")
