"""Where fedpoison touches Flower internals (pinned to flwr 1.42.x).

Creating an instruction ``Message`` outside Flower's runtime needs the process-wide task
identity that Flower's own runtimes set; ``run_simulation`` sets it the same way. A test
(tests/engines/test_flower_internals.py) fails loudly if a Flower upgrade moves these.
(One more reliance lives below the engines, in :mod:`fedpoison.records`: it builds
``Array``/``ArrayRecord``/``MetricRecord``/``RecordDict``/``Message`` instances without their
constructors' checks, reading the same task identity; tests/test_records.py guards that.)
"""

from __future__ import annotations

from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

__all__ = ["ErrorCode", "Run", "set_server_identity"]


def set_server_identity(run_id: int) -> Run:
    """Declare this process the ServerApp of ``run_id``; returns the ``Run`` record."""
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    return Run.create_empty(run_id=run_id)
