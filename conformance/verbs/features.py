"""Feature negotiation: what the driver accepts and what the device offers."""
from __future__ import annotations

from device_ref.ring import PACKED
from device_ref.virtio_constants import ACKNOWLEDGE as ACK
from device_ref.virtio_constants import DRIVER, F_RING_PACKED, F_VERSION_1, FEATURES_OK

from conformance import names
from conformance.engine.core import Engine
from conformance.engine.registry import INT, NAMES, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped


@action("negotiate", features=NAMES.with_default(None))
def negotiate(e: Engine, features: list[str] | None = None) -> None:
    e.begin()
    offered = e.offered()
    # a legacy device (MMIO version 1) predates VIRTIO_F_VERSION_1
    want = 0 if e.s.legacy else 1 << F_VERSION_1
    for f in features or []:
        want |= 1 << e.feature(f)
    if e.layout == PACKED:
        if not offered >> F_RING_PACKED & 1:
            raise Skipped("packed ring layout requested but the device does not offer "
                          "VIRTIO_F_RING_PACKED")
        want |= 1 << F_RING_PACKED
    missing = want & ~offered
    if missing:
        raise Skipped(f"device does not offer {', '.join(names.feature_names(missing))}")
    e.t.write_driver_features(want)
    e.negotiated = want
    e.write_status(ACK | DRIVER | FEATURES_OK)
    e.features_ok_written = True
    if not e.status() & FEATURES_OK:
        e.negotiated = 0
        if not e.next_is("features_ok"):
            raise Skipped(f"device refused the features "
                          f"{', '.join(names.feature_names(want, e.device_type))} at FEATURES_OK")


@action("accept_raw", features=NAMES.with_default(None))
def accept_raw(e: Engine, features: list[str] | None = None) -> None:
    e.begin()
    mask = 0
    for f in features or []:
        mask |= 1 << e.feature(f)
    e.t.write_driver_features(mask)
    e.negotiated = mask


@action("negotiate_offered")
def negotiate_offered(e: Engine) -> None:
    offered = e.offered()
    known = 0
    for bit in names.GENERIC_FEATURES.values():
        known |= 1 << bit
    for bit in names.TYPE_FEATURES.get(e.device_type, {}).values():
        known |= 1 << bit
    unknown = offered & ~known
    if unknown:
        raise Skipped(f"device offers features this runner cannot drive: "
                      f"{', '.join(names.feature_names(unknown, e.device_type))}")
    drivable = offered
    if e.layout != PACKED:
        drivable &= ~(1 << F_RING_PACKED)
    elif not offered >> F_RING_PACKED & 1:
        raise Skipped("packed ring layout requested but the device does not offer "
                      "VIRTIO_F_RING_PACKED")
    e.begin()
    e.t.write_driver_features(drivable)
    e.negotiated = drivable
    e.write_status(ACK | DRIVER | FEATURES_OK)
    e.features_ok_written = True
    if not e.status() & FEATURES_OK and not e.next_is("features_ok"):
        e.negotiated = 0
        raise Skipped("device refused every feature it offered at FEATURES_OK")


@action("backend_resize", sectors=INT)
def backend_resize(e: Engine, sectors: int) -> None:
    if e.s.resize is None:
        raise Skipped("this adapter cannot resize the device's backing storage")
    e.s.resize(sectors)


@expectation("features_ok", outcome=TEXT.one_of("accepted", "refused", "either"))
def expect_features_ok(e: Engine, outcome: str) -> None:
    if not e.features_ok_written:
        raise Skipped("vector expects a FEATURES_OK outcome but never wrote FEATURES_OK")
    kept = bool(e.status() & FEATURES_OK)
    if outcome == "accepted" and not kept:
        raise Failed("FEATURES_OK did not stick (the device refused the features)",
                     "the device keeps FEATURES_OK")
    if outcome == "refused" and kept:
        raise Failed("FEATURES_OK stuck (the device accepted the features)",
                     "the device clears FEATURES_OK")


@expectation("offered", features=NAMES)
def expect_offered(e: Engine, features: list[str]) -> None:
    offered = e.offered()
    if e.s.legacy and "VIRTIO_F_VERSION_1" in features:
        raise Skipped("a legacy device (MMIO version 1) follows the legacy interface, "
                      "which has no VIRTIO_F_VERSION_1")
    missing = [f for f in features if not offered >> e.feature(f) & 1]
    if missing:
        raise Failed(f"device offers {', '.join(names.feature_names(offered, e.device_type))}",
                     f"offers {', '.join(missing)}")


@expectation("config_changed")
def expect_config_changed(e: Engine) -> None:
    e.drain()
    if not e.config_irqs:
        raise Failed("no configuration change notification arrived",
                     "a configuration change notification")
