"""Verbs that judge a driver: in device mode (the runner is the driver) they SKIP."""
from __future__ import annotations

from conformance.engine.core import Engine
from conformance.engine.registry import INT, NAMES, TEXT, action, expectation
from conformance.outcomes import Skipped

DRIVER_MODE = ("driver under test: the runner plays the driver; driver-mode vectors run "
               "through conformance/driver_mode.py")


@action("driver_io", count=INT)
def driver_io(e: Engine, count: int) -> None:
    raise Skipped(DRIVER_MODE)


@action("driver_queue_reset")
def driver_queue_reset(e: Engine) -> None:
    raise Skipped(DRIVER_MODE)


@expectation("accepted", op=TEXT, features=NAMES)
def expect_accepted(e: Engine, op: str, features: list[str]) -> None:
    raise Skipped(DRIVER_MODE)


@expectation("addresses", where=TEXT)
def expect_addresses(e: Engine, where: str) -> None:
    raise Skipped(DRIVER_MODE)


@expectation("blk_requests", property=TEXT)
def expect_blk_requests(e: Engine, property: str) -> None:  # noqa: A002
    raise Skipped(DRIVER_MODE)


@expectation("net_frames", property=TEXT)
def expect_net_frames(e: Engine, property: str) -> None:  # noqa: A002
    raise Skipped(DRIVER_MODE)


@expectation("console_queues", property=TEXT)
def expect_console_queues(e: Engine, property: str) -> None:  # noqa: A002
    raise Skipped(DRIVER_MODE)


@expectation("accepted_subset")
def expect_accepted_subset(e: Engine) -> None:
    raise Skipped(DRIVER_MODE)


@expectation("driver_queues", property=TEXT)
def expect_driver_queues(e: Engine, property: str) -> None:  # noqa: A002
    raise Skipped(DRIVER_MODE)


@expectation("driver_chains", property=TEXT)
def expect_driver_chains(e: Engine, property: str) -> None:  # noqa: A002
    raise Skipped(DRIVER_MODE)
