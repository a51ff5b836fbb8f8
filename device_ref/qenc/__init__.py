"""Queue-buffer encryption (VIRTIO_F_QUEUE_ENCRYPTION, experimental bit 45).

A buffer-protection layer: the producer of a buffer seals it with an AEAD,
the consumer opens it. The driver seals device-readable parts and opens
device-writable ones; the device opens what it reads and seals what it
writes. ``spec/queue_encryption.vspec`` is the normative description;
docs/queue-encryption.md explains the modules.

    from device_ref.qenc import enable_device, enable_driver
    enable_device(blk_device)                 # offer bit 45, own the registers
    drv = BlkDriver(transport); enable_driver(drv, "aes-256-gcm"); drv.init()
"""
from __future__ import annotations

from device_ref.qenc.device_side import DeviceQenc, enable_device
from device_ref.qenc.driver_side import DriverQenc, QencAuthError, enable_driver

__all__ = ["DeviceQenc", "DriverQenc", "QencAuthError", "enable_device", "enable_driver"]
