"""A device behind a restricted DMA pool (``device-ref serve --pool``).

On platforms described by a device tree, a ``restricted-dma-pool``
reserved-memory node referenced by a device's ``memory-region`` confines
that device's DMA to the pool: the guest kernel bounces every buffer, and
places the virtqueues, inside it. The proposal's MMIO transport text names
that node as the way the platform describes a VIRTIO_F_SWIOTLB region.

A device marked here:

- offers VIRTIO_F_ACCESS_PLATFORM, without which Linux hands a virtio
  device guest-physical addresses directly and ignores the pool, and
  VIRTIO_F_SWIOTLB with the pool as its bounce region (the device was
  given a bounce region at construction);
- is mapped by the vhost-user back-end over the pool's range alone
  (``Session.set_mem_table``), so the operating system stops it from
  reaching any other guest memory: a ring or buffer outside the pool is a
  ring fault, reported, and the device needs a reset;
- in checking mode, judges the driver's buffers and rings against the pool
  even when VIRTIO_F_SWIOTLB was not negotiated: the platform's restriction
  is the one the proposal's driver rules put into words.
"""
from __future__ import annotations

from dataclasses import replace

from device_ref.device.features import F_ACCESS_PLATFORM, bit


def behind_pool(device):
    """Mark ``device`` (built with the pool as its bounce region) as pool-only."""
    if device.bounce_region() is None:
        raise ValueError("a pool-only device needs the pool as its bounce region")
    device.rules = replace(device.rules, offered=device.rules.offered | bit(F_ACCESS_PLATFORM))
    device.pool_only = True
    return device
