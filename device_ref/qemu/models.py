"""What each QEMU virtio device model needs around it, bound to nothing
outside the machine: a scratch disk image, a network back-end that loops
every frame back (a Unix datagram socket sending to itself), a chardev on
a Unix socket in the machine's own directory, the built-in entropy source.

``model_args`` turns a device name and its properties into QEMU arguments:
the back-end objects first, then the device, then devices that hang off it
(a console port on a virtio-serial bus, a disk on a SCSI controller).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SCRATCH_DISK = 4 << 20
DEVICE_ID = "dut"           # the model's QOM id (/machine/peripheral/dut)


class ModelError(Exception):
    """A device name or property the launcher cannot set up."""


@dataclass
class ModelArgs:
    before: list[str] = field(default_factory=list)
    device: str = ""
    after: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)   # what the back-ends use

    def argv(self) -> list[str]:
        return self.before + ["-device", self.device] + self.after


def family(device: str) -> str:
    """'blk', 'rng', ... from 'virtio-blk-pci' / 'virtio-blk-device'."""
    name = device.removeprefix("virtio-")
    for suffix in ("-pci-non-transitional", "-pci-transitional", "-pci", "-device"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def scratch_disk(path: Path, size: int = SCRATCH_DISK) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def model_args(device: str, props: dict[str, str], workdir: Path,
               extra: dict[str, str] | None = None) -> ModelArgs:
    """QEMU arguments for one virtio device model and its back-end."""
    if not device or any(c in device for c in ",= "):
        raise ModelError(f"bad device model name {device!r}")
    props = dict(props)
    out = ModelArgs()
    kind = family(device)
    if kind == "blk" and "drive" not in props:
        disk = scratch_disk(workdir / "disk.img")
        out.files["disk"] = disk
        out.before += ["-blockdev", f"driver=file,node-name=disk0,filename={disk}"]
        props["drive"] = "disk0"
    elif kind == "rng" and "rng" not in props:
        out.before += ["-object", "rng-builtin,id=rng0"]
        props["rng"] = "rng0"
    elif kind == "net" and "netdev" not in props:
        # a datagram socket on a Unix path in the machine's directory that
        # sends to itself: every frame transmitted comes back as received
        sock = workdir / "net.sock"
        out.files["net"] = sock
        out.before += ["-netdev", f"dgram,id=net0,local.type=unix,local.path={sock},"
                                  f"remote.type=unix,remote.path={sock}"]
        props["netdev"] = "net0"
        if "-pci" in device:
            # no iPXE option ROM: the firmware would spend ~20 s trying to boot from it
            props.setdefault("romfile", "")
    elif kind in ("serial", "console"):
        sock = workdir / "console.sock"
        out.files["console"] = sock
        out.before += ["-chardev", f"socket,id=con0,path={sock},server=on,wait=off"]
        out.after += ["-device", "virtconsole,chardev=con0,nr=0"]
    elif kind == "scsi":
        disk = scratch_disk(workdir / "scsi.img")
        out.files["disk"] = disk
        out.before += ["-blockdev", f"driver=file,node-name=sdisk0,filename={disk}"]
        out.after += ["-device", "scsi-hd,drive=sdisk0,channel=0,scsi-id=0,lun=0"]
    for key, value in (extra or {}).items():
        props.setdefault(key, value)
    props.setdefault("id", DEVICE_ID)
    out.device = ",".join([device] + [f"{k}={v}" for k, v in props.items()])
    return out


def parse_props(text: str) -> dict[str, str]:
    """'a=1,b=2' -> {'a': '1', 'b': '2'}."""
    out: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ModelError(f"device property {item!r} is not KEY=VALUE")
        out[key] = value
    return out
