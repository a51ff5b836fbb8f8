"""Device-type knowledge as the runtime sees it: queues by features and
config, the queue a hostile vector belongs on, and feature names."""
from __future__ import annotations

import pytest

from device_ref.device_types import (QueueSpec, UnknownDeviceType, device_type, independent_feature_name,
                                     known_types)

VERSION_1 = 1 << 32


def bit(t, name: str) -> int:
    b = device_type(t).feature_bit(name)
    assert b is not None, name
    return 1 << b


def names(qs: list[QueueSpec]) -> list[str]:
    return [q.name for q in qs]


def test_net_without_mq_has_one_pair_and_transmit_is_the_unprompted_queue():
    net = device_type("net")
    qs = net.queues(VERSION_1)
    assert names(qs) == ["receiveq1", "transmitq1"]
    assert [q.index for q in qs] == [0, 1]
    assert qs[0].direction == "to-driver" and not qs[0].unprompted
    assert qs[1].direction == "to-device" and qs[1].unprompted
    assert net.first_unprompted_queue(VERSION_1) == qs[1]
    # a large max_virtqueue_pairs is ignored until MQ or RSS is negotiated
    assert net.max_queues(VERSION_1, {"max_virtqueue_pairs": 64}) == 2


def test_net_pairs_follow_max_virtqueue_pairs_with_mq_or_rss_and_controlq_comes_last():
    net = device_type("net")
    for flag in ("VIRTIO_NET_F_MQ", "VIRTIO_NET_F_RSS"):
        f = VERSION_1 | bit("net", flag) | bit("net", "VIRTIO_NET_F_CTRL_VQ")
        qs = net.queues(f, {"max_virtqueue_pairs": 3})
        assert names(qs) == ["receiveq1", "transmitq1", "receiveq2", "transmitq2",
                             "receiveq3", "transmitq3", "controlq"]
        assert qs[-1].index == 6 and qs[-1].direction == "both"
    # MQ without the config field read: the smallest count the spec allows
    assert net.max_queues(VERSION_1 | bit("net", "VIRTIO_NET_F_MQ")) == 2


def test_console_multiport_lays_out_control_queues_then_further_ports():
    con = device_type("console")
    assert names(con.queues(VERSION_1, {"max_nr_ports": 5})) == ["receiveq0", "transmitq0"]
    qs = con.queues(VERSION_1 | bit("console", "VIRTIO_CONSOLE_F_MULTIPORT"), {"max_nr_ports": 3})
    assert names(qs) == ["receiveq0", "transmitq0", "control-receiveq", "control-transmitq",
                         "receiveq1", "transmitq1", "receiveq2", "transmitq2"]
    assert con.first_unprompted_queue(VERSION_1).name == "transmitq0"


def test_counted_request_queues_of_blk_scsi_crypto_and_fs():
    blk = device_type("blk")
    assert blk.max_queues(VERSION_1, {"num_queues": 4}) == 1
    assert blk.max_queues(VERSION_1 | bit("blk", "VIRTIO_BLK_F_MQ"), {"num_queues": 4}) == 4
    scsi = device_type("scsi")
    assert names(scsi.queues(VERSION_1, {"num_queues": 2})) == ["controlq", "eventq", "requestq1", "requestq2"]
    crypto = device_type("crypto")
    assert names(crypto.queues(VERSION_1, {"max_dataqueues": 2})) == ["dataq1", "dataq2", "controlq"]
    fs = device_type("fs")
    assert names(fs.queues(VERSION_1)) == ["hiprio", "request1"]
    f = VERSION_1 | bit("fs", "VIRTIO_FS_F_NOTIFICATION")
    assert names(fs.queues(f, {"num_request_queues": 2})) == ["hiprio", "notification", "request1", "request2"]


def test_optional_balloon_queues_take_no_index_when_absent():
    bal = device_type("balloon")
    assert names(bal.queues(VERSION_1)) == ["inflateq", "deflateq"]
    f = VERSION_1 | bit("balloon", "VIRTIO_BALLOON_F_PAGE_REPORTING")
    qs = bal.queues(f)
    assert names(qs) == ["inflateq", "deflateq", "reporting_vq"] and qs[2].index == 2


@pytest.mark.parametrize("name,first", [("net", "transmitq1"), ("gpu", "controlq"), ("blk", "requestq1"),
                                        ("rng", "requestq"), ("input", "statusq"), ("vsock", "tx"),
                                        ("sound", "controlq"), ("can", "txq")])
def test_first_unprompted_queue_is_where_a_device_looks_without_an_outside_event(name, first):
    assert device_type(name).first_unprompted_queue(VERSION_1).name == first


def test_every_v1_4_type_is_known_with_queues_and_valid_directions():
    expected = {"net", "blk", "console", "rng", "balloon", "scsi", "gpu", "input", "crypto", "vsock",
                "fs", "rpmb", "iommu", "sound", "mem", "i2c", "scmi", "gpio", "pmem", "can", "spi",
                "media", "rtc"}
    assert set(known_types()) == expected
    for name in known_types():
        t = device_type(name)
        qs = t.queues(VERSION_1)
        assert qs, name
        assert all(q.direction in ("to-device", "to-driver", "both") for q in qs)
        assert [q.index for q in qs] == list(range(len(qs)))


def test_lookup_by_id_and_alias_and_an_unknown_type_names_the_known_ones():
    assert device_type(1).name == "net"
    assert device_type("entropy") is device_type("rng") is device_type(4)
    assert device_type("16").name == "gpu"
    with pytest.raises(UnknownDeviceType) as e:
        device_type("frobnicator")
    assert "'frobnicator'" in str(e.value) and "net (1)" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UnknownDeviceType):
        device_type(9)          # 9P has an id but no chapter in v1.4


def test_feature_names_fall_back_from_type_to_independent_to_bitN():
    net = device_type("net")
    assert net.feature_name(0) == "VIRTIO_NET_F_CSUM"
    assert net.feature_name(22) == "VIRTIO_NET_F_MQ"
    assert net.feature_name(60) == "VIRTIO_NET_F_RSS"
    assert net.feature_name(32) == "VIRTIO_F_VERSION_1"
    assert net.feature_name(41) == "VIRTIO_F_ADMIN_VQ"      # not the legacy GUEST_RSC4
    assert net.feature_name(6) == "VIRTIO_NET_F_GSO"          # legacy, nothing newer there
    assert net.feature_name(44) == "VIRTIO_F_SWIOTLB"
    assert net.feature_name(127) == "bit127"
    assert device_type("crypto").feature_name(0) == "VIRTIO_CRYPTO_F_REVISION_1"
    assert device_type("rng").feature_name(0) == "bit0"
    assert net.feature_names(1 | 1 << 32) == ["VIRTIO_NET_F_CSUM", "VIRTIO_F_VERSION_1"]
    assert independent_feature_name(34) == "VIRTIO_F_RING_PACKED"


def test_count_fields_say_which_config_field_to_read_under_which_features():
    net = device_type("net")
    assert net.count_fields(VERSION_1) == []
    (f,) = net.count_fields(VERSION_1 | bit("net", "VIRTIO_NET_F_MQ"))
    assert (f.name, f.offset, f.size) == ("max_virtqueue_pairs", 8, 2)
    assert [(f.name, f.offset, f.size) for f in device_type("fs").count_fields(VERSION_1)] == \
        [("num_request_queues", 36, 4)]
    assert [f.name for f in device_type("blk").count_fields(VERSION_1 | bit("blk", "VIRTIO_BLK_F_MQ"))] \
        == ["num_queues"]
    con = device_type("console")
    assert con.count_fields(VERSION_1) == []
    assert [f.offset for f in con.count_fields(VERSION_1 | bit("console", "VIRTIO_CONSOLE_F_MULTIPORT"))] == [4]
