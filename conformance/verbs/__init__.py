"""The verbs of the check vocabulary, one module per area.

Importing this package registers every verb in
``conformance.engine.registry.REGISTRY`` (docs/check-actions.md lists them).
"""
from conformance.verbs import (balloon, blk, driver_side, features, gpu, input,  # noqa: F401
                               io, lifecycle, memory, preconditions, qenc, queues, rng, scsi,
                               transport)
