"""Several ivrd nodes as one contact center: the shared router's log, lease and heartbeats in Redis."""
