"""Driver-mode vectors (``given target driver``) with the ``ref`` adapter.

Here the driver is under test and the device judges it: the reference
driver of ``device_ref`` runs, in this process, against a checking
reference device (``device_ref.checking``), performs the vector's
``driver_io`` requests, and the expectations read what the checking device
recorded. The same checking device judges a third-party driver as a
vhost-user back-end (``device-ref serve --check-driver``); this module
makes sure the vectors' driver-mode checks hold for our own driver and that
the checker does not cry wolf on a conforming one.
"""
from __future__ import annotations

from dataclasses import replace

from device_ref.checking.device import CHECKED_PROPERTIES, checking_device
from device_ref.checking.requirements import expectation_key
from device_ref.devices.blk import BlkOptions, MemoryStorage
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import DriverOptions
from device_ref.driver.errors import DriverError
from device_ref.driver.console import ConsoleDriver
from device_ref.driver.net import RX, TX, NetDriver
from device_ref.driver.rng import RngDriver
from device_ref.qenc import algorithms as qenc_algorithms
from device_ref.qenc import enable_device, enable_driver
from device_ref.device.features import F_RING_PACKED, F_RING_RESET, has
from device_ref.devices.blk import F_FLUSH, ID_LEN, T_FLUSH, T_GET_ID
from device_ref.driver.blk import header
from device_ref.transport import TransportError
from device_ref.transport_inproc import InProcTransport
from device_ref.transports.device_side import InProcRig, register_rig
from device_ref.transports.driver_rules import RULES, DeviceFacts, judge, not_exercised

from conformance.adapters.base import DriverRig
from conformance.names import STATUS_BITS, feature_bit
from conformance.outcomes import Failed, Skipped
from conformance.verdicts import Evidence, Verdict

DISK_SECTORS = 2048
RNG_SEED = 1234
RAM_SIZE = 4 << 20


def run_driver_test(test, rig: DriverRig, layout: str) -> tuple[Verdict, str, Evidence]:
    """Run one driver-mode vector; the verdict is about the reference driver."""
    run = DriverRun(test, rig.bounce, layout, rig.device_type)
    try:
        return run.execute()
    finally:
        run.close()


class DriverRun:
    def __init__(self, test, bounce, layout: str, default_type: str | None) -> None:
        self.test = test
        self.group = test.group
        self.bounce = bounce
        self.layout = layout
        self.device_type = self.group.device_type or default_type or "blk"
        self.transport: InProcTransport | None = None
        self.rig: InProcRig | None = None     # register-level transport (driver_registers)
        self.device = None
        self.driver = None

    def close(self) -> None:
        if self.rig is not None:
            self.rig.close()
            self.rig = None
            self.transport = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def execute(self) -> tuple[Verdict, str, Evidence]:
        steps = list(self.group.preconditions) + list(self.test.steps)
        try:
            self._build(self.group.preconditions)
        except Skipped as exc:
            return Verdict.SKIP, exc.observed, Evidence(observed=exc.observed)
        for i, step in enumerate(steps):
            ev = Evidence(step=step.describe(), step_index=i, source=step.source)
            try:
                if step.kind == "precondition":
                    continue
                if step.kind == "action":
                    self._action(step)
                else:
                    self._expect(step)
            except Skipped as exc:
                ev.observed = exc.observed
                return Verdict.SKIP, exc.observed, ev
            except Failed as exc:
                ev.observed, ev.expected = exc.observed, exc.expected
                return Verdict.FAIL, f"{step.describe()}: {exc.observed}", ev
        return Verdict.PASS, "the driver behaved as required", Evidence(step="(end of test)")

    # -- set-up from the preconditions ---------------------------------------------
    def _build(self, preconditions) -> None:
        bounce = self.bounce
        style = "pci"
        for step in preconditions:
            a = step.args
            if step.verb == "layout" and a["layout"] not in ("any", self.layout):
                raise Skipped(f"needs the {a['layout']} ring layout; this run uses {self.layout}")
            if step.verb == "transport":
                if a["transport"] == "mmio":
                    style = "mmio"
                elif a["transport"] not in ("any", "pci"):
                    raise Skipped(f"needs transport {a['transport']}; the in-process "
                                  f"transport plays pci or mmio")
            if step.verb == "region":
                if a["state"] == "absent":
                    raise Skipped("needs a device that offers VIRTIO_F_SWIOTLB with no region; "
                                  "the reference devices always describe theirs")
                if bounce is None:
                    raise Skipped("needs a bounce region (run with ref, not ref:swiotlb=off)")
        registers = any(step.verb == "driver_registers" for step in self.test.steps)
        queue_reset = any(step.verb == "driver_queue_reset" for step in self.test.steps)
        if registers:
            bounce = None     # the register models describe no bounce region
        offer = ~0 if self.layout == "packed" else ~(1 << F_RING_PACKED)
        if self.device_type == "blk":
            self.device = checking_device("blk", MemoryStorage(DISK_SECTORS * 512),
                                          BlkOptions(), bounce=bounce, offer=offer)
        elif self.device_type == "rng":
            self.device = checking_device("rng", seed=RNG_SEED, bounce=bounce, offer=offer)
        elif self.device_type in ("net", "console") and not qenc_wanted(preconditions):
            self.device = checking_device(self.device_type, bounce=bounce, offer=offer)
        else:
            raise Skipped(f"no checking device of type {self.device_type}")
        if queue_reset:   # as the reference devices do (conformance/adapters/ref.py)
            self.device.rules = replace(self.device.rules, offered=self.device.rules.offered
                                        | 1 << F_RING_RESET)
        # Ask for and suppress notifications in turn; poll() after each request
        # finds what a quiet driver left, so notifies_when_asked and
        # quiet_when_suppressed are both judged.
        self.device.vary_notifications = True
        qenc = qenc_wanted(preconditions)
        if qenc:   # the checking device offers queue encryption and owns its registers;
            # it lists ChaCha20-Poly1305 but not AES-256-GCM, so a driver that does
            # not choose from the list commits an algorithm it refuses
            enable_device(self.device, algorithms=qenc_algorithms.bitmap(["chacha20-poly1305"]))
        for step in preconditions:
            if step.verb != "offered":
                continue
            for name in step.args["features"]:
                b = feature_bit(name, self.device_type)
                if b is None or not has(self.device.device_features(), b):
                    raise Skipped(f"the checking {self.device_type} device does not offer {name}")
        if self.layout == "packed" and not has(self.device.device_features(), F_RING_PACKED):
            raise Skipped("the packed layout needs VIRTIO_F_RING_PACKED offered")
        if registers:
            # judged on its register accesses: the in-process register models
            # of the PCI / MMIO transports, logging every access
            if qenc:
                raise Skipped("the register models carry no queue encryption registers")
            self.rig = register_rig(self.device, style, log=True)
            self.transport = self.rig.transport
        else:
            self.transport = InProcTransport(self.device, ram_size=RAM_SIZE, bounce_style=style)
        cls = {"blk": BlkDriver, "rng": RngDriver, "net": NetDriver,
               "console": ConsoleDriver}[self.device_type]
        self.driver = cls(self.transport, DriverOptions())
        if qenc:   # ... and the driver under test uses it
            enable_driver(self.driver, "aes-256-gcm")

    # -- actions ---------------------------------------------------------------------
    def _action(self, step) -> None:
        if step.verb not in ("driver_io", "driver_queue_reset"):
            raise Skipped(f"{step.verb} is not a driver-mode step")
        drv = self.driver
        try:
            if drv.state != "ready":
                drv.init()
            if step.verb == "driver_queue_reset":
                drv.reset_queue(0)
                return
            # net, console: the transmit queue first, so that what was sent
            # is there for the receive queue
            polled = (TX, RX) if self.device_type in ("net", "console") else (0,)
            workload(drv, self.device_type, int(step.args["count"]),
                     poll=lambda: [self.device.poll(q) for q in polled])
        except (DriverError, TransportError) as exc:
            raise Failed(f"the driver under test failed against a conforming device: {exc}",
                         "ordinary requests complete") from None
        self.device.finish()

    # -- expectations -----------------------------------------------------------------
    def _expect(self, step) -> None:
        dev = self.device
        a = step.args
        if step.verb == "status":
            want = 0
            for name in a["bits"]:
                want |= STATUS_BITS[name]
            got = dev.read_status()
            ok = (got & want) == want if a["op"] == "has" else not got & want
            if not ok:
                raise Failed(f"device status {got:#x} (writes {dev.status_writes})",
                             f"status {a['op']} {' '.join(a['bits'])}")
            return
        if step.verb == "accepted":
            for name in a["features"]:
                b = feature_bit(name, self.device_type)
                if b is None:
                    raise Skipped(f"unknown feature {name}")
                if has(dev.negotiated, b) != (a["op"] == "has"):
                    raise Failed(f"accepted {dev.negotiated:#x}", f"accepted {a['op']} {name}")
            return
        if step.verb == "driver_registers":
            self._expect_registers(a["rule"])
            return
        key = expectation_key(step.verb, a)
        if key not in CHECKED_PROPERTIES:
            raise Skipped(f"the checking device does not judge '{key}' (see docs/driver-check.md)")
        seen = dev.check_log.of(key)
        if seen:
            first = seen[0]
            raise Failed(f"{len(seen)} violation(s); first: {first.detail} {first.evidence}",
                         f"{key} throughout")


    def _expect_registers(self, rule: str) -> None:
        rig = self.rig
        kind = RULES[rule][0]
        if rig is None or kind not in ("any", rig.transport.kind):
            raise Skipped(f"{rule} is a {kind} rule; the driver ran over "
                          f"{rig.transport.kind if rig else 'no register model'}")
        model = rig.model
        facts = DeviceFacts(msix_vectors=getattr(model, "vectors", 0),
                            queue_max={q: model.max_size(q) for q in range(len(model.queues))},
                            packed=has(self.device.negotiated, F_RING_PACKED))
        idle = not_exercised(rule, rig.space.log or [])
        if idle:
            raise Skipped(idle)
        seen = judge(rule, rig.space.log or [], facts)
        if seen:
            raise Failed(f"{len(seen)} violation(s); first: {seen[0]}", f"{rule} throughout")


def qenc_wanted(preconditions) -> bool:
    """Whether a vector asks for a device that offers queue encryption."""
    return any(step.verb == "offered" and "VIRTIO_F_QUEUE_ENCRYPTION" in step.args["features"]
               for step in preconditions)


def workload(drv, device_type: str, count: int, poll=None) -> None:
    """``count`` ordinary requests of the device type, in a mix that uses what
    was negotiated: one- and multi-segment reads and writes (indirect tables
    when negotiated), the last sectors of the disk, FLUSH and GET_ID; for
    rng, reads of varying length. Each request is submitted, then ``poll()``
    (when given) lets the device look without a notification, then the
    driver waits for it."""
    if device_type == "net":
        _net_workload(drv, count, poll)
        return
    if device_type == "console":
        _console_workload(drv, count, poll)
        return
    for i in range(count):
        req, what = _submit(drv, device_type, i)
        if poll is not None:
            poll()
        if device_type == "rng":
            drv.wait(req)
        else:
            drv.finish(req, what)


def _net_workload(drv, count: int, poll=None) -> None:
    """Frames of varying length, each with a receive buffer offered before
    it is sent; the frame that comes back must be the one sent."""
    for i in range(count):
        length = 60 + (i * 97) % 1455
        frame = b"\xff" * 6 + bytes.fromhex("020000000003") + b"\x88\xb5" + bytes(
            (i + k) & 0xFF for k in range(length - 14))
        rx = drv.submit_rx()
        tx = drv.submit_frame(frame)
        if poll is not None:
            poll()
        drv.wait(tx)
        drv.wait(rx)
        if drv.frame_of(rx) != frame:
            raise DriverError(f"frame {i} came back changed ({rx.used_len} bytes used)")


def _console_workload(drv, count: int, poll=None) -> None:
    """Lines of text of varying length, each read back through a receive
    buffer offered before it is written (the device echoes port 0)."""
    for i in range(count):
        line = f"line {i}: ".encode() + b"x" * ((i * 37) % 200) + b"\r\n"
        rx = drv.submit_rx(len(line))
        tx = drv.submit_write(line)
        if poll is not None:
            poll()
        drv.wait(tx)
        if drv.received(drv.wait(rx)) != line:
            raise DriverError(f"line {i} came back changed")


_RAMP = bytes(range(256)) * 3      # every 512-byte run of 0..255 counting up, wrapping


def _submit(drv, device_type: str, i: int):
    if device_type == "rng":
        return drv.submit_read(16 + 48 * (i % 4)), "entropy"
    cap = drv.capacity
    kind = i % 8
    sector = (i * 8) % max(cap - 16, 1)
    data = _RAMP[i * 7 & 0xFF:(i * 7 & 0xFF) + 512]    # byte k is (i * 7 + k) mod 256
    if kind == 0:
        return drv.submit_write(sector, data), "write"
    if kind == 1:
        return drv.submit_read(sector, 512), "read"
    if kind == 2:
        return drv.submit_write(sector, data * 8, segments=4), "write"
    if kind == 3:
        return drv.submit_read(sector, 4096, segments=4), "read"
    if kind == 4 and has(drv.negotiated, F_FLUSH):
        return drv.submit(0, [header(T_FLUSH, 0)], [1]), "flush"
    if kind == 5:
        return drv.submit(0, [header(T_GET_ID, 0)], [ID_LEN, 1]), "get id"
    if kind == 6:
        return drv.submit_write(cap - 1, data), "write"
    return drv.submit_read(cap - 2, 1024, segments=2), "read"
