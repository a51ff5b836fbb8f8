"""Device adapters: one interface, many ways to reach a device under test."""
from conformance.adapters.base import Adapter, AdapterError, Session, parse_adapter

__all__ = ["Adapter", "AdapterError", "Session", "parse_adapter"]
