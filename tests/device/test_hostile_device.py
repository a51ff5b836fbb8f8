"""The reference driver against hostile devices.

Every misbehaviour ends in its own error, with the device reset *before*
the driver frees anything (so no buffer goes back to the caller, or into
the pool, while the device could still write it), a clean driver state
(nothing outstanding, nothing allocated, device status 0), and a driver
that can initialise again.
"""
import pytest

from device_ref.driver import errors as E
from device_ref.transport import TransportError
from device_ref.transport_inproc import InProcTransport

from .harness import Combo, blk_pair
from .hostile import HostileBlk

CASES = [
    ("bad_id", E.BadUsedId, (False, True)),
    ("len_too_big", E.UsedLengthTooLarge, (False, True)),
    ("idx_jump", E.UsedIndexJump, (False,)),        # split only: packed has no used index
    ("wrong_wrap", E.WrongWrapCounter, (True,)),     # packed only
    ("bad_flags", E.WrongWrapCounter, (True,)),
    ("storm", E.NotificationStorm, (False, True)),
    ("config_storm", E.NotificationStorm, (False, True)),
    ("needs_reset", E.DeviceNeedsReset, (False, True)),
    ("silent", E.RequestTimeout, (False, True)),
]
PARAMS = [(m, exc, packed, sw) for m, exc, layouts in CASES for packed in layouts
          for sw in (False, True)]


def ids(p):
    m, _e, packed, sw = p
    return f"{m}-{'packed' if packed else 'split'}{'-swiotlb' if sw else ''}"


@pytest.mark.parametrize("case", PARAMS, ids=[ids(p) for p in PARAMS])
def test_hostile_used_entries_end_cleanly(case):
    mode, exc_type, packed, swiotlb = case
    dev, t, drv, storage = blk_pair(Combo(packed=packed, indirect=True, swiotlb=swiotlb),
                                    device_cls=HostileBlk, mode=mode)
    drv.opts.timeout = 0.2
    dev.evil = False
    drv.init()
    dev.driver = drv
    drv.write(0, b"\x11" * 512)      # an honest start
    dev.evil = True
    user = drv.alloc_guest(512)      # caller RAM the device may write into (no SWIOTLB)
    t.memory.write(user.addr, b"\xcc" * 512)
    req = drv.submit_read(0, user)
    with pytest.raises(exc_type):
        drv.wait(req)
    # The device was reset while the driver still held the request's buffers...
    assert dev.held_at_reset and dev.held_at_reset[-1] > 3
    # ...and afterwards everything is clean.
    assert t.read_status() == 0
    assert all(q.ring is None for q in dev.queues)
    assert drv.state == "reset" and drv.outstanding() == 0
    assert drv.dma.in_use == (0 if swiotlb else 1)   # only the caller's own buffer remains
    assert req.done and isinstance(req.error, exc_type) and req.data is None
    with pytest.raises(E.DriverNotReady):
        drv.read(0, 512)
    # A late kick cannot reach the caller's buffer: the device no longer runs.
    before = t.memory.read(user.addr, 512)
    dev.evil = False
    dev.notify(0)
    assert t.memory.read(user.addr, 512) == before
    # The driver starts over cleanly.
    drv.init()
    assert drv.read(0, 512) == b"\x11" * 512
    t.close()


def test_config_generation_that_never_settles():
    dev, t, drv, _ = blk_pair(Combo(), device_cls=HostileBlk, mode="config_unstable")
    dev.driver = drv
    with pytest.raises(E.ConfigUnstable):
        drv.init()
    assert t.read_status() == 0 and drv.state == "reset" and drv.dma.in_use == 0
    dev.evil = False
    drv.init()
    assert drv.capacity == 2048
    t.close()


def test_needs_reset_noticed_without_a_request():
    dev, t, drv, _ = blk_pair(Combo(packed=True), device_cls=HostileBlk, mode="")
    dev.evil = False
    drv.init()
    dev.needs_reset("spontaneous")
    with pytest.raises(E.DeviceNeedsReset):
        drv.check()
    assert t.read_status() == 0 and drv.dma.in_use == 0
    t.close()


def test_bad_id_among_several_outstanding_releases_none_early():
    dev, t, drv, _ = blk_pair(Combo(), device_cls=HostileBlk, mode="silent")
    dev.evil = False
    drv.init()
    dev.driver = drv
    dev.evil = True
    reqs = [drv.submit_read(i, 512) for i in range(4)]   # device takes all four, answers none
    dev.mode = "bad_id"
    last = drv.submit_read(9, 512)
    with pytest.raises(E.BadUsedId):
        drv.wait(last)
    assert dev.held_at_reset[-1] >= 3 + 5 * 2   # rings + header and status of each request
    assert all(r.done and r.data is None and isinstance(r.error, E.BadUsedId) for r in reqs)
    assert drv.dma.in_use == 0
    t.close()


def test_reset_failure_keeps_buffers():
    dev, t, drv, _ = blk_pair(Combo(), device_cls=HostileBlk, mode="silent")
    dev.evil = False
    drv.init()
    dev.evil = True
    drv.opts.timeout = 0.1
    held = drv.dma.in_use
    req = drv.submit_read(0, 512)
    original = InProcTransport.write_status

    def refuse_reset(self, status):
        if status == 0:
            raise TransportError("device does not answer")
        original(self, status)
    t.write_status = refuse_reset.__get__(t)
    with pytest.raises(E.RequestTimeout, match="reset also failed"):
        drv.wait(req)
    assert drv.state == "dead"
    assert drv.dma.in_use > held            # nothing freed: the device may still own it
    with pytest.raises(E.DriverNotReady):
        drv.init()
    del t.write_status
    t.close()


@pytest.mark.parametrize("mode,exc_type", [("storm", E.NotificationStorm), ("silent", E.RequestTimeout),
                                           ("bad_id", E.BadUsedId)])
def test_hostile_device_in_its_own_thread(mode, exc_type):
    dev, t, drv, _ = blk_pair(Combo(packed=True, event_idx=True), device_cls=HostileBlk,
                              mode=mode, threaded=True)
    drv.opts.timeout = 0.3
    dev.evil = False
    drv.init()
    dev.driver = drv
    dev.evil = True
    req = drv.submit_read(0, 512)
    with pytest.raises(exc_type):
        drv.wait(req)
    assert t.read_status() == 0 and drv.dma.in_use == 0 and req.data is None
    dev.evil = False
    drv.init()
    drv.write(1, b"t" * 512)
    assert drv.read(1, 512) == b"t" * 512
    t.close()


@pytest.mark.parametrize("packed", [False, True])
def test_completion_without_a_status_byte_is_not_success(packed):
    dev, t, drv, _ = blk_pair(Combo(packed=packed), device_cls=HostileBlk, mode="no_status")
    dev.evil = False
    drv.init()
    drv.write(0, b"a" * 512)          # leaves a 0 (OK) status byte in pool memory
    dev.evil = True
    # status 255: the driver's sentinel, never a real status (no "as info":
    # keeping the exception would tie this frame into a reference cycle)
    with pytest.raises(E.BlkIOError, match="status 255"):
        drv.write(0, b"b" * 512)
    assert drv.state == "ready"        # a bad status is an answer, not a broken device
    t.close()
