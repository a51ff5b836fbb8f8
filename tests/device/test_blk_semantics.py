"""virtio-blk request semantics over a chain, pinned to the spec's values.

From the spec: request header is le32 type, le32 reserved, le64 sector;
types IN=0, OUT=1, FLUSH=4, GET_ID=8; status OK=0, IOERR=1, UNSUPP=2,
written as the last byte of the device-writable part; sectors are 512
bytes; the id string is 20 bytes, NUL padded. Used length here is the
number of bytes the device wrote into the writable part.
"""
import struct

from device_ref.device.chain import ChainIO, Segment
from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage


class FlatMemory:
    def __init__(self, size):
        self.data = bytearray(size)

    def read(self, addr, n):
        assert 0 <= addr and addr + n <= len(self.data)
        return bytes(self.data[addr:addr + n])

    def write(self, addr, data):
        assert 0 <= addr and addr + len(data) <= len(self.data)
        self.data[addr:addr + len(data)] = data

    def translate(self, addr, n):
        assert 0 <= addr and addr + n <= len(self.data)
        return memoryview(self.data)[addr:addr + n]


def request(mem, rtype, sector, out_data=b"", in_len=0, header_split=(16,), status_at=0x8000):
    """Lay a request out in memory; return segments."""
    hdr = struct.pack("<IIQ", rtype, 0, sector)
    segs, addr, pos = [], 0x100, 0
    for n in header_split:
        mem.write(addr, hdr[pos:pos + n])
        segs.append(Segment(addr, n, False))
        addr += n + 7  # leave gaps so the split is real
        pos += n
    if out_data:
        mem.write(0x1000, out_data)
        segs.append(Segment(0x1000, len(out_data), False))
    if in_len:
        segs.append(Segment(0x4000, in_len, True))
    mem.write(status_at, b"\xee")
    segs.append(Segment(status_at, 1, True))
    return segs


def run(dev, mem, segs):
    used = dev.handle(0, ChainIO(mem, segs))
    return used


def make(size_sectors=64, **kw):
    storage = MemoryStorage(size_sectors * 512)
    return BlkDevice(storage, BlkOptions(**kw)), storage, FlatMemory(0x10000)


def test_out_then_in_round_trip_and_used_lengths():
    dev, storage, mem = make()
    payload = bytes(range(256)) * 4
    used = run(dev, mem, request(mem, 1, 3, out_data=payload))
    assert used == 1 and mem.data[0x8000] == 0
    assert storage.data[3 * 512:3 * 512 + 1024] == payload
    used = run(dev, mem, request(mem, 0, 3, in_len=1024))
    assert used == 1025 and mem.data[0x8000] == 0
    assert bytes(mem.data[0x4000:0x4000 + 1024]) == payload


def test_header_split_across_three_descriptors():
    dev, storage, mem = make()
    storage.data[512:1024] = b"\x5a" * 512
    used = run(dev, mem, request(mem, 0, 1, in_len=512, header_split=(3, 5, 8)))
    assert used == 513 and mem.data[0x8000] == 0
    assert bytes(mem.data[0x4000:0x4200]) == b"\x5a" * 512


def test_read_past_capacity_is_ioerr():
    dev, _, mem = make(size_sectors=8)
    used = run(dev, mem, request(mem, 0, 7, in_len=1024))
    assert mem.data[0x8000] == 1 and used == 1


def test_write_past_capacity_is_ioerr_and_writes_nothing():
    dev, storage, mem = make(size_sectors=8)
    run(dev, mem, request(mem, 1, 8, out_data=b"\x11" * 512))
    assert mem.data[0x8000] == 1
    assert storage.data == bytearray(8 * 512)


def test_huge_sector_does_not_wrap():
    dev, _, mem = make()
    run(dev, mem, request(mem, 0, 2**64 - 1, in_len=512))
    assert mem.data[0x8000] == 1


def test_unknown_type_is_unsupp():
    dev, _, mem = make()
    used = run(dev, mem, request(mem, 99, 0))
    assert mem.data[0x8000] == 2 and used == 1


def test_partial_sector_is_ioerr():
    dev, _, mem = make()
    run(dev, mem, request(mem, 1, 0, out_data=b"x" * 100))
    assert mem.data[0x8000] == 1


def test_get_id_is_20_bytes_nul_padded():
    dev, _, mem = make(serial=b"abc")
    used = run(dev, mem, request(mem, 8, 0, in_len=20))
    assert used == 21 and mem.data[0x8000] == 0
    assert bytes(mem.data[0x4000:0x4014]) == b"abc" + b"\0" * 17


def test_flush_ok_when_offered_unsupp_when_not():
    dev, storage, mem = make()
    run(dev, mem, request(mem, 4, 0))
    assert mem.data[0x8000] == 0 and storage.flushes == 1
    dev, storage, mem = make(flush=False)
    run(dev, mem, request(mem, 4, 0))
    assert mem.data[0x8000] == 2 and storage.flushes == 0


def test_read_only_device_refuses_writes():
    dev, storage, mem = make(read_only=True)
    assert dev.device_features() >> 5 & 1  # VIRTIO_BLK_F_RO offered
    run(dev, mem, request(mem, 1, 0, out_data=b"\x22" * 512))
    assert mem.data[0x8000] == 1 and storage.data[:512] == bytearray(512)


def test_short_header_is_ioerr():
    dev, _, mem = make()
    used = run(dev, mem, request(mem, 0, 0, header_split=(8,)))
    assert mem.data[0x8000] == 1 and used == 1


def test_no_writable_byte_completes_with_zero_and_records():
    dev, _, mem = make()
    hdr = struct.pack("<IIQ", 0, 0, 0)
    mem.write(0x100, hdr)
    assert dev.handle(0, ChainIO(mem, [Segment(0x100, 16, False)])) == 0
    assert dev.events[-1].kind == "violation"


def test_config_layout_offsets():
    # struct virtio_blk_config: capacity le64 @0, seg_max le32 @12,
    # blk_size le32 @20, num_queues le16 @34.
    dev, _, _ = make(size_sectors=96, seg_max=7, blk_size=4096)
    cfg = dev.read_config(0, 36)
    assert struct.unpack_from("<Q", cfg, 0)[0] == 96
    assert struct.unpack_from("<I", cfg, 12)[0] == 7
    assert struct.unpack_from("<I", cfg, 20)[0] == 4096
    assert struct.unpack_from("<H", cfg, 34)[0] == 1


def test_feature_offer_bits():
    dev, _, _ = make()
    f = dev.device_features()
    for n in (2, 6, 9, 28, 29, 32, 34, 35):  # SEG_MAX BLK_SIZE FLUSH INDIRECT EVENT_IDX VERSION_1 PACKED IN_ORDER
        assert f >> n & 1, n
    assert not f >> 44 & 1  # no bounce region, no SWIOTLB offer
    assert dev.device_id() == 2


def test_backing_store_failure_is_ioerr():
    class Failing(MemoryStorage):
        def read(self, offset, length):
            raise OSError(5, "Input/output error")

    storage = Failing(8 * 512)
    dev = BlkDevice(storage, BlkOptions())
    mem = FlatMemory(0x10000)
    used = run(dev, mem, request(mem, 0, 0, in_len=512))
    assert mem.data[0x8000] == 1 and used == 1
    assert dev.events[-1].kind == "io_error"
