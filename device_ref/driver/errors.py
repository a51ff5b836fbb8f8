"""What the reference driver raises. Each hostile-device behaviour has its
own class so callers (and the conformance runner) can tell them apart."""
from __future__ import annotations

from device_ref.ring.errors import RingErrorCode


class DriverError(Exception):
    """Base of every driver error."""


class NegotiationFailed(DriverError):
    """The device did not keep FEATURES_OK (it refused the feature set)."""


class DriverNotReady(DriverError):
    """The driver is not initialised (never was, or was reset after an error)."""


class DeviceError(DriverError):
    """The device misbehaved or failed; the driver has reset it."""


class RequestTimeout(DeviceError):
    """A request did not complete in time."""


class DeviceNeedsReset(DeviceError):
    """The device set DEVICE_NEEDS_RESET."""


class NotificationStorm(DeviceError):
    """Interrupts kept coming without any used buffer to go with them."""


class ConfigUnstable(DeviceError):
    """The configuration generation never settled across a read."""


class BadUsedId(DeviceError):
    """A used entry named a buffer that was never made available (or is not in flight)."""


class UsedLengthTooLarge(DeviceError):
    """A used length exceeded the writable size of its buffer."""


class UsedIndexJump(DeviceError):
    """The used index moved past the number of outstanding buffers."""


class WrongWrapCounter(DeviceError):
    """Packed ring: a used descriptor carried the wrong wrap counter or flags."""


class RingBroken(DeviceError):
    """Another ring-level error reported by the ring core."""


BY_RING_CODE: dict[RingErrorCode, type[DeviceError]] = {
    RingErrorCode.USED_ID_BAD: BadUsedId,
    RingErrorCode.USED_LEN_TOO_BIG: UsedLengthTooLarge,
    RingErrorCode.USED_IDX_JUMP: UsedIndexJump,
    RingErrorCode.USED_BAD_FLAGS: WrongWrapCounter,
    RingErrorCode.USED_WRONG_WRAP: WrongWrapCounter,
}


class BlkIOError(DriverError):
    """A block request completed with a status other than VIRTIO_BLK_S_OK."""

    def __init__(self, status: int, what: str) -> None:
        self.status = status
        name = {1: "IOERR", 2: "UNSUPP"}.get(status, f"status {status}")
        super().__init__(f"{what}: device answered {name}")
