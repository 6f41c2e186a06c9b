"""The keys of the messages the server and the ClientApps exchange, written once.

The server sends ``arrays`` (the global model) and ``config`` (``server-round`` and the local
procedure, :meth:`~fedpoison.training.local.LocalTraining.to_config`); a client replies with
``arrays`` and ``metrics`` holding ``num-examples`` (and ``train-loss``). ``partition-id`` is
the key Flower's simulation puts in each node's ``node_config``.
"""

PARTITION_ID = "partition-id"
SERVER_ROUND = "server-round"
NUM_EXAMPLES = "num-examples"
TRAIN_LOSS = "train-loss"
