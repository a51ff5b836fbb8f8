"""The verbs of the check vocabulary, one module per area.

Importing this package registers every verb in
``conformance.engine.registry.REGISTRY`` (docs/check-actions.md lists them).
"""
from conformance.verbs import (admin, balloon, blk, console_port, driver_side,  # noqa: F401
                               features, gpu, input, io, lifecycle, memory, net,
                               preconditions, qenc, queues, rng, scsi, transport)
