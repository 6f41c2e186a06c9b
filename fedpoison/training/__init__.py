"""What the server and the clients share: local SGD and evaluation (:mod:`.local`) and the
flat model layout (:mod:`.flat`)."""
