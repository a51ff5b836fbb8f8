"""`specc audit`: checks of an upstream spec tree (checks.py) and our coverage of it (coverage.py)."""
from specc.audit.checks import CHECKS, Finding, audit, summarise

__all__ = ["CHECKS", "Finding", "audit", "summarise"]
