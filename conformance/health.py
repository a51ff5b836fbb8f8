"""Whether a device works again after a test: reset, negotiate, one request."""
from __future__ import annotations

from device_ref.ring import PACKED, SPLIT
from device_ref.ring.hostile import RingOutcome
from device_ref.transport import TransportError
from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import BLK_T_IN, F_RING_PACKED

from conformance.engine.core import Engine, raised_by_device
from conformance.outcomes import Failed, Skipped, Wedged
from conformance.verbs.blk import blk_submit
from conformance.verbs.features import negotiate
from conformance.verbs.lifecycle import driver_ok, reset
from conformance.verbs.queues import setup_queues, wait_used
from conformance.verbs.rng import rng_read


def health_check(e: Engine) -> str | None:
    """None when the device works after a reset, else what went wrong."""
    try:
        return _check(e)
    except (TransportError, OSError) as exc:
        return f"the device stopped answering: {exc}"
    except Exception as exc:  # noqa: BLE001 - an in-process device's crash is an answer
        if raised_by_device(exc):
            return f"the device crashed: {exc!r}"
        raise


def _check(e: Engine) -> str | None:
    try:
        reset(e)
        if e.layout == PACKED and not e.offered() >> F_RING_PACKED & 1:
            e.layout = SPLIT     # the vector ran without rings; any layout will do
        negotiate(e, [])
    except Skipped as exc:
        return f"device no longer accepts a plain feature set: {exc.observed}"
    except (Wedged, Failed, RingOutcome) as exc:
        return exc.observed
    if e.device_type not in ("blk", "rng"):
        return None
    try:
        setup_queues(e)
        driver_ok(e)
        if e.device_type == "blk":
            blk_submit(e, BLK_T_IN, 0, data_in=SECTOR, count=1)
            if e.last_blk_status != 0:
                return f"a one-sector read after reset ended with status {e.last_blk_status}"
        else:
            rng_read(e, 16)
            e.kick([e.request_queue()])
            wait_used(e, int(e.timeout * 1000))
            if not e.since_kick:
                return "an entropy request after reset was not completed"
    except RingOutcome as exc:     # Skipped, Failed, Wedged and the ring outcomes
        return exc.observed
    return None
