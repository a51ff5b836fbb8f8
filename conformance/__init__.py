"""Conformance runner: executes generated vectors against a virtio device."""
