"""The identity a series is sent under: `Name <address>`, never a placeholder.

A series goes to a public list with a Signed-off-by line, which certifies
the Developer's Certificate of Origin; a made-up name or an address nobody
reads (RFC 2606 / RFC 6761 names: example.*, *.invalid, *.localhost) must
never end up there unnoticed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<mail>[^<>\s]+)>\s*$")
_MAIL = re.compile(r"^[^@\s]+@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$")
PLACEHOLDER_NAMES = ("your name", "name", "unknown", "none", "user", "root")


class IdentityError(Exception):
    """An identity a series cannot be sent under (one line)."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def _placeholder_domain(domain: str) -> bool:
    labels = domain.lower().split(".")
    return ("example" in labels or labels[-1] in ("invalid", "localhost", "local")
            or labels == ["localhost"])


def parse_identity(text: str, source: str) -> Identity:
    """`Name <address>` as given by `source` (for the message), checked."""
    m = _IDENT.match(text or "")
    if m is None:
        raise IdentityError(f"{source}: '{text}' is not of the form 'Full Name <address>'")
    name, mail = m.group("name").strip(), m.group("mail")
    if not name:
        raise IdentityError(f"{source}: '{text}' has no name")
    if name.lower() in PLACEHOLDER_NAMES:
        raise IdentityError(f"{source}: '{name}' is a placeholder, not a name")
    dm = _MAIL.match(mail)
    if dm is None:
        raise IdentityError(f"{source}: '{mail}' is not a mail address")
    if _placeholder_domain(dm.group("domain")):
        raise IdentityError(f"{source}: '{mail}' is a placeholder address "
                            f"({dm.group('domain')} receives no mail)")
    return Identity(name, mail)
