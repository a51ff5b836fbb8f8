"""The conformance engine: driver-side test state and the verb registry.

vectors -> runner (verdicts) -> engine (``core.Engine`` plus the verbs of
``conformance/verbs``, found through ``registry``) -> adapter -> device.
"""
