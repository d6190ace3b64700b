"""Address parsing, one at a time and in bulk.

Addresses become keys the tables search directly: IPv4 as ``uint32``, IPv6 as 16 big-endian bytes
(numpy ``S16``, which compares bytewise, i.e. numerically). ``inet_pton`` does the parsing in C
and is strict: ``1.2.3``, ``01.2.3.4``, ``1.2.3.4/24`` and zone ids (``fe80::1%eth0``) are errors.
An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is the IPv4 address it maps.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from geowarden.errors import AddressError

_pton4 = partial(socket.inet_pton, socket.AF_INET)
_pton6 = partial(socket.inet_pton, socket.AF_INET6)
_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_MAX_TEXT = 64  # longer than any address form; bounds what an error message echoes


@dataclass(frozen=True, slots=True)
class Parsed:
    """One parsed address: ``version`` 4 with ``v4`` set, or 6 with ``v6`` (16 bytes) set."""

    text: str
    version: int
    v4: int = 0
    v6: bytes = b""


def parse(text: str) -> Parsed:
    """Parse one address. Raises ``AddressError`` with a one-line reason."""
    s = text.strip() if isinstance(text, str) else text
    if not isinstance(s, str):
        raise AddressError(f"not an IP address: expected text, got {type(text).__name__}")
    try:
        return Parsed(s, 4, int.from_bytes(_pton4(s), "big"))
    except (OSError, ValueError):  # ValueError: a NUL or a lone surrogate in the text
        pass
    try:
        packed = _pton6(s)
    except (OSError, ValueError):
        raise AddressError(f"not an IP address: {_shown(s)}") from None
    if packed.startswith(_MAPPED_PREFIX):
        return Parsed(s, 4, int.from_bytes(packed[12:], "big"))
    return Parsed(s, 6, 0, packed)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """Many addresses, split by family, with the positions they came from.

    ``v4_pos``/``v4`` and ``v6_pos``/``v6`` are parallel arrays; ``errors`` lists
    ``(position, reason)`` for inputs that are not addresses.
    """

    n: int
    v4_pos: npt.NDArray[np.intp]
    v4: npt.NDArray[np.uint32]
    v6_pos: npt.NDArray[np.intp]
    v6: npt.NDArray[np.bytes_]
    errors: tuple[tuple[int, str], ...]


def parse_many(texts: Sequence[str]) -> ParsedBatch:
    """Parse a batch. The common case, all IPv4, costs one C-level pass and one copy."""
    n = len(texts)
    try:
        packed = b"".join(map(_pton4, texts))
    except (OSError, TypeError, ValueError):  # ValueError: a NUL or a lone surrogate in a text
        return _parse_mixed(texts)
    v4 = np.frombuffer(packed, dtype=">u4").astype(np.uint32)
    return ParsedBatch(
        n,
        np.arange(n, dtype=np.intp),
        v4,
        np.empty(0, dtype=np.intp),
        np.empty(0, dtype="S16"),
        (),
    )


def parse_v4_ints(values: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    """Packed IPv4 addresses given as integers; values outside 0..2**32-1 are an error."""
    arr = np.asarray(values)
    if arr.dtype == np.uint32:
        return arr
    if arr.dtype.kind not in "iu":
        raise AddressError(f"packed IPv4 addresses must be integers, not {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF_FFFF):
        raise AddressError("packed IPv4 addresses must be within 0..4294967295")
    return arr.astype(np.uint32)


def _parse_mixed(texts: Sequence[str]) -> ParsedBatch:
    """Split by family with one cheap test per address, parse each family in one C-level pass,
    and fall back to one address at a time only for a family that holds a malformed one."""
    try:
        is6 = np.fromiter((":" in t for t in texts), dtype=bool, count=len(texts))
    except TypeError:
        return _parse_each(texts)
    pos6 = np.flatnonzero(is6)
    pos4 = np.flatnonzero(~is6)
    try:
        v4 = np.frombuffer(b"".join(map(_pton4, [texts[i] for i in pos4.tolist()])), dtype=">u4").astype(np.uint32)
        packed6 = b"".join(map(_pton6, [texts[i] for i in pos6.tolist()]))
    except (OSError, TypeError, ValueError):
        return _parse_each(texts)
    v6 = np.frombuffer(packed6, dtype="S16") if packed6 else np.empty(0, dtype="S16")
    mapped = np.frombuffer(packed6, dtype=np.uint8).reshape(-1, 16)[:, :12] if packed6 else None
    if mapped is not None and (mapped == np.frombuffer(_MAPPED_PREFIX, dtype=np.uint8)).all(axis=1).any():
        return _parse_each(texts)  # IPv4-mapped IPv6 addresses are rare: answer them as IPv4 one by one
    return ParsedBatch(len(texts), pos4.astype(np.intp), v4, pos6.astype(np.intp), v6, ())


def _parse_each(texts: Sequence[str]) -> ParsedBatch:
    v4_pos: list[int] = []
    v4: list[int] = []
    v6_pos: list[int] = []
    v6: list[bytes] = []
    errors: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        try:
            p = parse(text)
        except AddressError as exc:
            errors.append((i, exc.message))
            continue
        if p.version == 4:
            v4_pos.append(i)
            v4.append(p.v4)
        else:
            v6_pos.append(i)
            v6.append(p.v6)
    return ParsedBatch(
        len(texts),
        np.asarray(v4_pos, dtype=np.intp),
        np.asarray(v4, dtype=np.uint32),
        np.asarray(v6_pos, dtype=np.intp),
        np.asarray(v6, dtype="S16") if v6 else np.empty(0, dtype="S16"),
        tuple(errors),
    )


def _shown(text: str) -> str:
    """The input as it may appear in an error message: quoted and cut to a bounded length."""
    return repr(text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "...")


def v4_text(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET, int(value).to_bytes(4, "big"))


def v6_text(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, packed.rjust(16, b"\x00"))
