"""Parsing shared by several commands."""

from __future__ import annotations

import tomllib
from typing import Any

from ..errors import ConfigError

__all__ = ["parse_key_values"]


def parse_key_values(items: tuple[str, ...], flag: str, example: str, *,
                     bare_strings: bool) -> dict[str, Any]:
    """``KEY=VALUE`` options; VALUE is read as a TOML value (``3``, ``[3, 8]``, ``true``).

    With ``bare_strings`` a VALUE that is not TOML is kept as a string; otherwise it is an error.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} {example}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            if not bare_strings:
                raise ConfigError(f"{flag} {item!r}: VALUE must be a number, [a, b] or "
                                  "true/false") from None
            value = text
        out[key.strip()] = value
    return out
