"""specc: compile virtio spec changes written in the vspec DSL."""

__version__ = "0.1.0"
