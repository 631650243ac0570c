"""Durations ('1h30m') and sizes ('2GiB'), parsed once and written back in one canonical form."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MAX_DURATION = 365 * 86400.0  # one year: every timeout, delay and interval
MAX_SIZE = 1024**5  # 1 PiB: memory limits and VM memory


def parse_duration(value: Any) -> float:
    """'30s', '5m', '1h30m', '250ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return _bounded_duration(value, value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h30m")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h30m")
    return _bounded_duration(total, value)


def _bounded_duration(seconds: float, given: Any) -> float:
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"invalid duration {given!r}: at most 365d")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """Seconds -> the canonical '1h30m' form."""
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        return f"{int(round(seconds * 1000))}ms"
    rest, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def parse_size(value: Any) -> int:
    """'512M', '2G', '2GiB', '1.5G' or a number of bytes -> bytes (binary units: 1G = 1024 MiB)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: use e.g. 512M, 2G, 2GiB")
    if isinstance(value, int):
        return _bounded_size(value, value)
    match = _SIZE_RE.match(str(value))
    if not match or (match.group(3) and not match.group(2) and match.group(3).lower() != "b"):
        raise ValueError(f"invalid size {value!r}: use e.g. 512M, 2G, 2GiB")
    return _bounded_size(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()], value)


def _bounded_size(size: float, given: Any) -> int:
    if not math.isfinite(size) or size > MAX_SIZE:
        raise ValueError(f"invalid size {given!r}: at most 1024T")
    if int(size) <= 0:
        raise ValueError(f"invalid size {given!r}: must be positive")
    return int(size)


def format_size(size: int) -> str:
    """Bytes -> the canonical '2GiB' / '512MiB' form (bytes when not a whole unit)."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration, json_schema_input_type=str | float),
    PlainSerializer(format_duration, return_type=str),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size, json_schema_input_type=str | int),
    PlainSerializer(format_size, return_type=str),
]
