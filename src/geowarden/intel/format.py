"""The on-disk format of an intel snapshot: what the writer (``build.py``) and the reader
(``snapshot.py``) both rely on, in one place.

A snapshot is a directory named ``<date>-<content hash>`` holding ``meta.json`` (``SnapshotMeta``)
and numpy arrays, one ``<name>.npy`` each:

- ``v4_starts`` (uint32, sorted) and ``v4_rows``: the IPv4 space cut into intervals, each
  pointing at an answer row; ``v4_index24``: for each /24 block the interval holding its first
  address, with ``FLAG_SPLIT24`` set when the block holds more than one interval;
- ``v6_starts`` (16-byte big-endian keys, sorted) and ``v6_rows``: the same for IPv6;
- ``row_*``: the answer rows, one array per field (``row_array``): fused ``country``, ``asn``,
  ``org``, ``flags``, ``provider``, each country source's own answer (``country_field``), and
  bitmasks of which label sources said so (``label_word_field``).

A reader refuses any other ``FORMAT_VERSION``: change it whenever this layout changes.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import numpy as np

FORMAT_VERSION = 2
META_FILE = "meta.json"

# -- arrays ----------------------------------------------------------------------------------

V4_STARTS = "v4_starts"
V4_ROWS = "v4_rows"
V4_INDEX24 = "v4_index24"
V6_STARTS = "v6_starts"
V6_ROWS = "v6_rows"
ROW_PREFIX = "row_"

#: Answer-row fields every snapshot has (beside the per-source ones).
ROW_FIELDS = ("country", "asn", "org", "flags", "provider")


def row_array(field: str) -> str:
    """The array that holds one answer-row field (``cc:dbip-country`` -> ``row_cc__dbip-country``)."""
    return ROW_PREFIX + field.replace(":", "__")


def field_of(array: str) -> str:
    """The answer-row field an array holds (the inverse of ``row_array``)."""
    return array.removeprefix(ROW_PREFIX).replace("__", ":")


def country_field(source: str) -> str:
    """The answer-row field holding one country source's own answer."""
    return f"cc:{source}"


def label_word_field(word: int) -> str:
    """The answer-row field holding bits ``64*word`` .. ``64*word+63`` of "which source said which label"."""
    return f"src{word}"


#: Arrays without which a directory is not a snapshot.
REQUIRED_ARRAYS = frozenset({V4_STARTS, V4_ROWS, V4_INDEX24, V6_STARTS, V6_ROWS, row_array("country")})

# -- flags (the ``flags`` field of an answer row) -----------------------------------------------

FLAG_BITS = {"hosting": 1, "vpn": 2, "tor": 4, "proxy": 8, "relay": 16}
FLAG_RESERVED = 32
FLAG_DISAGREE = 64
#: Country sources that are a provider's own statement about its prefix: they win the vote.
PROVIDER_STATEMENT_SOURCES = ("geofeed", "provider-region")
#: The label source the build's own network classifier writes (see ``intel/classify.py``).
CLASSIFIED_SOURCE = "classified-asn"
FLAG_CONTESTED = 128  # sources disagree and neither a provider's own statement nor a majority settles the answer
FLAG_SPLIT24 = np.uint32(1 << 31)  # in the /24 index: the block holds more than one interval

# -- indicators shared by peers ----------------------------------------------------------------

#: The label a peer's shared indicator gives an address. It has no bit in ``flags`` (all eight
#: are taken): which peer said it, with which confidence, is kept in the label-source bits, one
#: bit per (peer, confidence bucket), named by ``shared_slot``.
SHARED_LABEL = "shared-indicator"
#: Source names of peers' indicators: ``shared:<peer>``.
SHARED_PREFIX = "shared:"
#: Confidences (0-100) are kept in buckets of this width, so a peer needs at most 11 bits.
SHARED_BUCKET = 10


def shared_slot(peer: str, confidence: int) -> str:
    """The label-source name of one peer's indicators of one confidence bucket: ``shared:peer@80``."""
    bucket = max(0, min(100, int(confidence))) // SHARED_BUCKET * SHARED_BUCKET
    return f"{SHARED_PREFIX}{peer}@{bucket}"


def parse_shared_slot(name: str) -> tuple[str, int] | None:
    """``(peer, confidence 0-100)`` of a ``shared_slot`` name, None for any other source."""
    if not name.startswith(SHARED_PREFIX):
        return None
    peer, _, conf = name.removeprefix(SHARED_PREFIX).rpartition("@")
    return (peer, int(conf)) if peer and conf.isdigit() else None


# -- meta.json -------------------------------------------------------------------------------


class SnapshotMeta(TypedDict):
    """What ``meta.json`` holds."""

    format: int  # FORMAT_VERSION
    id: NotRequired[str]  # the directory name; set when written
    built_at: NotRequired[str]  # ISO 8601, UTC; set when written
    note: NotRequired[str]  # why it was built ("default", "built from DIR", "update <stamp>")
    sources: list[dict[str, Any]]  # each source's metadata, entries and skipped lines
    country_sources: list[str]  # the sources with a country_field, in column order
    label_sources: list[list[str]]  # (source, label) per bit of the label_word_field columns
    countries: list[str]  # country codes, indexed by the country fields ("" first: unknown)
    strings: list[str]  # organisation and provider names, indexed by org and provider ("" first)
    flags: dict[str, int]  # flag name -> bit (FLAG_BITS, "reserved", "disagree", "contested")
    counts: dict[str, Any]  # intervals, rows, build seconds
    classified: NotRequired[dict[str, dict[str, Any]]]  # ASN -> the classifier's label, rule, confidence, detail
