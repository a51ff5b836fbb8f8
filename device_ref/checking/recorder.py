"""``device-ref serve --check-driver``: checking devices per connection and
the report file.

A ``Recorder`` stands in for the serve command's device factory: each new
vhost-user connection gets a checking device, and the report (``report.py``)
is written again whenever one of them is reset (a front-end stopping its
rings or disconnecting resets the device) and when the server exits, so the
file always holds everything seen so far.
"""
from __future__ import annotations

import sys

from device_ref.checking import report
from device_ref.checking.requirements import RequirementMap, load_map


class Recorder:
    def __init__(self, factory, device_type: str, path: str,
                 vectors: str | None = None) -> None:
        self.factory = factory          # builds a checking device per connection
        self.device_type = device_type
        self.path = path
        self.rmap: RequirementMap = load_map(vectors)
        self.devices: list = []
        self.write()    # an empty report at once: a reader can tell the server ran

    def __call__(self):
        device = self.factory()
        device.on_reset = self.write
        self.devices.append(device)
        return device

    def document(self) -> dict:
        conns = [report.connection_record(n, d, self.device_type, self.rmap)
                 for n, d in enumerate(self.devices, 1)]
        return report.build(self.device_type, conns, self.rmap)

    def write(self) -> None:
        try:
            report.write(self.path, self.document())
        except OSError as exc:
            # Said once per failure, never fatal: the device keeps serving.
            print(f"device-ref serve: error: cannot write report {self.path}: {exc.strerror}",
                  file=sys.stderr, flush=True)

    def violations(self) -> int:
        return sum(len(d.check_log.violations) for d in self.devices)
