"""The verbs of the check vocabulary, one module per area.

Importing this package registers every verb in
``conformance.engine.registry.REGISTRY`` (docs/check-actions.md lists them).
"""
from conformance.verbs import (blk, console, driver_side, features, io, lifecycle,  # noqa: F401
                               memory, net, preconditions, qenc, queues, rng,
                               transport)
