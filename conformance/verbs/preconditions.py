"""Preconditions (``given ...``): whether a test applies to this device and run."""
from __future__ import annotations

from conformance.engine.core import Engine
from conformance.engine.registry import NAMES, TEXT, precondition
from conformance.outcomes import Skipped
from conformance.verbs.driver_side import DRIVER_MODE


@precondition("device", type=TEXT)
def pre_device(e: Engine, type: str) -> None:  # noqa: A002 - the vocabulary's name
    if type not in ("any", e.device_type):
        raise Skipped(f"needs a {type} device; the device under test is {e.device_type}")


@precondition("layout", layout=TEXT)
def pre_layout(e: Engine, layout: str) -> None:
    if layout not in ("any", e.layout):
        raise Skipped(f"needs the {layout} ring layout; this run uses {e.layout}")


@precondition("offered", features=NAMES)
def pre_offered(e: Engine, features: list[str]) -> None:
    offered = e.offered()
    missing = [f for f in features if not offered >> e.feature(f) & 1]
    if missing:
        raise Skipped(f"device does not offer {', '.join(missing)}")


@precondition("transport", transport=TEXT)
def pre_transport(e: Engine, transport: str) -> None:
    if transport not in ("any", e.s.transport_kind):
        raise Skipped(f"needs the {transport} transport; the device is reached over "
                      f"{e.s.transport_kind}")


@precondition("target", side=TEXT)
def pre_target(e: Engine, side: str) -> None:
    if side == "driver":
        raise Skipped(DRIVER_MODE)


@precondition("region", state=TEXT)
def pre_region(e: Engine, state: str) -> None:
    has_region = e.t.bounce_description() is not None
    if (state == "present") != has_region:
        raise Skipped(f"needs a transport that {'describes' if state == 'present' else 'does not describe'}"
                      f" a bounce-buffer region")
