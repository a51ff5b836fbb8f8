"""Feature acceptance at FEATURES_OK (spec: Feature Bits; proposal bit 44)."""
from device_ref.device.negotiation import FeatureRules, refusal

VERSION_1 = 1 << 32
SWIOTLB = 1 << 44
INDIRECT = 1 << 28


def test_subset_with_version_1_is_accepted():
    rules = FeatureRules(offered=VERSION_1 | INDIRECT)
    assert refusal(rules, VERSION_1) is None
    assert refusal(rules, VERSION_1 | INDIRECT) is None


def test_feature_not_offered_is_refused():
    rules = FeatureRules(offered=VERSION_1)
    assert "never offered" in refusal(rules, VERSION_1 | INDIRECT)


def test_missing_version_1_is_refused():
    assert refusal(FeatureRules(offered=VERSION_1 | INDIRECT), INDIRECT)


def test_device_requiring_swiotlb_refuses_without_it():
    rules = FeatureRules(offered=VERSION_1 | SWIOTLB, required=VERSION_1 | SWIOTLB)
    assert "required" in refusal(rules, VERSION_1)
    assert refusal(rules, VERSION_1 | SWIOTLB) is None


def test_dependency_rule():
    rules = FeatureRules(offered=VERSION_1 | 1 | 2, depends={0: 2})  # bit 0 needs bit 1
    assert "depends" in refusal(rules, VERSION_1 | 1)
    assert refusal(rules, VERSION_1 | 1 | 2) is None


def test_address_carrying_device_types_cannot_offer_swiotlb():
    # swiotlb.dev.device-types: balloon (5), GPU (16) and memory (24) devices
    # hand the device guest addresses outside descriptors.
    import pytest
    from device_ref.device.core import VirtioDevice
    from device_ref.device_types import SwiotlbNotAllowed, swiotlb_allowed
    rules = FeatureRules(offered=VERSION_1 | SWIOTLB)
    for device_id in (5, 16, 24):
        assert not swiotlb_allowed(device_id)
        with pytest.raises(SwiotlbNotAllowed, match="VIRTIO_F_SWIOTLB"):
            VirtioDevice(device_id, 1, 8, rules, bytes(8))
        VirtioDevice(device_id, 1, 8, FeatureRules(offered=VERSION_1), bytes(8))
    for device_id in (2, 4, 26):    # blk, entropy, fs (its DAX window is a shared memory region)
        assert swiotlb_allowed(device_id)
        VirtioDevice(device_id, 1, 8, rules, bytes(8))
