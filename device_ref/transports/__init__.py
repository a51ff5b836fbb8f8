"""Driver-side virtio transports over a register bus: PCI (``pci.py``) and
MMIO (``mmio.py``), both ``device_ref.transport.DriverTransport``s."""
