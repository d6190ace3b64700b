"""Prompt fingerprints: 64-bit SimHash values, written as 16 lowercase hex characters.

A SimHash keeps similar texts close in Hamming distance, so the simulator makes them as such:

- ``unique``: a new random value (unrelated prompts differ in about 32 bits);
- ``app``: one of the account's few fixed prompts (an app's system prompt), repeated exactly;
- ``popular``: one of a handful of values shared by the whole world (an SDK's health check,
  a ``ping``: exact; common templates with variable parts: 0-3 bits flipped). Many unrelated
  honest accounts send them at random times: the honest trap for campaign detection;
- ``campaign``: one of the campaign's templates with 0-3 random bits flipped (a distillation
  operation sends the same few templated prompts from many accounts, in step).

A persona's ``prompts`` mix says which share of its requests is of which kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

KINDS = ("unique", "app", "popular", "campaign")
MAX_FLIPS = 3

U64Array = npt.NDArray[np.uint64]
# byte -> its two hex characters as one little-endian uint16 (so the bytes in memory read "hi lo")
_HEX_PAIRS = np.array([ord(f"{b:02x}"[0]) | (ord(f"{b:02x}"[1]) << 8) for b in range(256)], dtype="<u2")


@dataclass(frozen=True, slots=True)
class Popular:
    """The world's popular prompts: values, whether each is a template (bits vary), weights."""

    values: U64Array
    templated: npt.NDArray[np.bool_]
    weights: npt.NDArray[np.float64]


def random64(rng: np.random.Generator, n: int) -> U64Array:
    out: U64Array = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    return out


def popular(rng: np.random.Generator) -> Popular:
    """Two exact values (a health check, a ping) and four common templates."""
    templated = np.array([False, False, True, True, True, True])
    weights = np.array([0.35, 0.15, 0.2, 0.15, 0.1, 0.05])
    return Popular(random64(rng, len(templated)), templated, weights / weights.sum())


def flips(rng: np.random.Generator, n: int, max_bits: int = MAX_FLIPS) -> U64Array:
    """``n`` masks with 0 to ``max_bits`` random bits set (each count equally likely)."""
    k = rng.integers(0, max_bits + 1, size=n)
    pos = rng.integers(0, 64, size=(max_bits, n)).astype(np.uint64)
    mask = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    for j in range(max_bits):
        mask |= np.where(k > j, np.left_shift(one, pos[j]), np.uint64(0))
    return mask


def fingerprints(
    mix: dict[str, float],
    ev_acc: npt.NDArray[np.int64],
    n_accounts: int,
    app_prompts: int,
    rng: np.random.Generator,
    world: Popular,
    templates: U64Array,
) -> U64Array:
    """One fingerprint per event of the accounts ``ev_acc`` under the prompt ``mix``."""
    n = len(ev_acc)
    names = [k for k in KINDS if mix.get(k, 0.0) > 0 and (k != "campaign" or len(templates))] or ["unique"]
    p = np.array([mix.get(k, 1.0) for k in names], dtype=float)
    kind = np.minimum(np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right"), len(names) - 1)
    out = random64(rng, n)
    for i, name in enumerate(names):
        m = np.flatnonzero(kind == i)
        if name == "unique" or not len(m):
            continue
        if name == "app":
            per = max(1, app_prompts)
            fixed = random64(rng, n_accounts * per)
            out[m] = fixed[ev_acc[m] * per + rng.integers(0, per, size=len(m))]
        elif name == "popular":
            j = rng.choice(len(world.values), size=len(m), p=world.weights)
            out[m] = world.values[j] ^ np.where(world.templated[j], flips(rng, len(m)), np.uint64(0))
        else:
            j = rng.integers(0, len(templates), size=len(m))
            out[m] = templates[j] ^ flips(rng, len(m))
    return out


def hamming(a: U64Array, b: U64Array | np.uint64) -> npt.NDArray[Any]:
    """Bits that differ, element-wise."""
    x = np.atleast_1d(np.bitwise_xor(a, b)).astype(np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.asarray(np.bitwise_count(x))
    out: npt.NDArray[Any] = np.unpackbits(x.view(np.uint8)).reshape(-1, 64).sum(axis=1)
    return out


def hex_bytes(values: U64Array) -> npt.NDArray[np.uint8]:
    """``n x 16`` ASCII bytes: the lowercase hex text of each value (vectorised)."""
    raw = np.ascontiguousarray(values, dtype=">u8").view(np.uint8)
    out: npt.NDArray[np.uint8] = _HEX_PAIRS[raw].view(np.uint8).reshape(-1, 16)
    return out


def hex_strings(values: U64Array) -> list[str]:
    return [f"{v:016x}" for v in values.tolist()]


def arrow_hex(values: U64Array) -> Any:
    """A pyarrow string array of the hex texts, built from buffers (no Python strings)."""
    import pyarrow as pa  # noqa: PLC0415 - optional dependency

    n = len(values)
    data = hex_bytes(values)
    if 16 * n < 2**31:
        offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int32)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    offsets64 = np.arange(0, 16 * (n + 1), 16, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets64), pa.py_buffer(data))
