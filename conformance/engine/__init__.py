"""The conformance engine: driver-side test state, the verb registry, health checks.

vectors -> runner (verdicts) -> engine (``core.Engine`` plus the verbs of
``conformance/verbs``, found through ``registry``) -> adapter -> device.
"""
