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
