"""The identity a series goes out under: real, never a placeholder."""
import pytest

from specc.patch.identity import IdentityError, parse_identity


def test_a_real_identity_is_split():
    ident = parse_identity("  Ada  Q. Author <ada.author@mail.author.test> ", "--signoff")
    assert (ident.name, ident.email) == ("Ada  Q. Author", "ada.author@mail.author.test")
    assert str(ident) == "Ada  Q. Author <ada.author@mail.author.test>"


@pytest.mark.parametrize("text, needle", [
    ("", "not of the form"),
    ("ada@author.test", "not of the form"),
    (" <ada@author.test>", "has no name"),
    ("Your Name <you@author.test>", "placeholder, not a name"),
    ("Ada <ada>", "not a mail address"),
    ("Ada <ada@example.org>", "placeholder address"),
    ("Ada <ada@example.com>", "placeholder address"),
    ("Ada <ada@lists.example.net>", "placeholder address"),
    ("Ada <ada@author.example>", "placeholder address"),
    ("Ada <ada@host.invalid>", "placeholder address"),
    ("Ada <root@localhost>", "not a mail address"),
    ("Ada <ada@box.localhost>", "placeholder address"),
])
def test_placeholders_are_refused_with_the_source_named(text, needle):
    with pytest.raises(IdentityError) as exc:
        parse_identity(text, "git config user.name/user.email")
    msg = str(exc.value)
    assert needle in msg and msg.startswith("git config user.name/user.email: ")
