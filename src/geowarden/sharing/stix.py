"""Indicator sharing with peers: analytics findings as a STIX 2.1 bundle, and a peer's bundle read
back as labelled indicators (the ``stix2`` library builds and parses every object).

Export (:func:`export_bundle`): each infrastructure finding (``analyze``'s ``infrastructure``
kind, whose subject is a network ``AS1234`` or a prefix) becomes one ``indicator`` with a STIX
pattern (``[autonomous-system:number = 1234]``, ``[ipv4-addr:value = '203.0.113.0/24']``,
``[ipv6-addr:value = ...]``), its ``confidence`` (the finding's score times 100), a validity window,
a TLP marking, the producer's ``identity`` as creator, and the finding's evidence summarised in
the description: numbers only (counts and shares), never an account, key or example id. Findings
about accounts and keys are internal and are not exported; they are counted as skipped.
With a salt agreed between the peers, the phones and payment instruments that members of a
finding share are exported too, as keyed fingerprints only (``sharing/fingerprints.py``): one
indicator each, pattern ``[x-geowarden-phone:hmac_sha256 = '<hex>']`` (or ``x-geowarden-payment``),
carrying the salt's id (``x_geowarden_salt_id``), never the salt or the value.

Import (:func:`import_bundle`): a bundle of at most :data:`MAX_BUNDLE_BYTES` is parsed by
``stix2`` (a malformed or oversized one is refused with one line); each indicator with one of
the three pattern forms above and still valid becomes a ``shared-indicator`` record with the
peer's name, its confidence, validity and TLP; each fingerprint indicator a ``shared-fingerprint``
record (its kind, HMAC and salt id; one under another salt than the importer's is refused); other
patterns and expired indicators are counted, never silently dropped. ``intel build`` compiles the
address records into the snapshot (``intel/sources/shared.py``) and the live ``shared`` signal
matches the fingerprints (``signals/shared.py``); both are labels beside local evidence and never
replace it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import stix2
from stix2.exceptions import STIXError

from geowarden.errors import ConfigError, InputError
from geowarden.sharing.fingerprints import fingerprint, salt_id

MAX_BUNDLE_BYTES = 32 * 1024 * 1024
TLP = {"white": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER, "red": stix2.TLP_RED}
_TLP_BY_ID = {m.id: name for name, m in TLP.items()}
_ASN = re.compile(r"^\[autonomous-system:number = (\d{1,10})\]$")
_ADDR = re.compile(r"^\[ipv([46])-addr:value = '([0-9A-Fa-f:./]{2,49})'\]$")
_SUBJECT_ASN = re.compile(r"^AS(\d{1,10})$")
_FP = re.compile(r"^\[x-geowarden-(phone|payment):hmac_sha256 = '([0-9a-f]{64})'\]$")


def pattern_for(subject: str) -> str | None:
    """The STIX pattern of a finding's network subject, or None when it is not a network."""
    m = _SUBJECT_ASN.match(subject)
    if m:
        return f"[autonomous-system:number = {int(m.group(1))}]"
    try:
        net = ipaddress.ip_network(subject, strict=False)
    except ValueError:
        return None
    return f"[ipv{net.version}-addr:value = '{net}']"


def _summary(kind: str, evidence: Mapping[str, Any]) -> str:
    nums = {k: v for k, v in evidence.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    parts = ", ".join(f"{k} {v:g}" for k, v in sorted(nums.items()))
    return f"geowarden {kind} finding" + (f": {parts}" if parts else "")


def export_bundle(
    findings: Iterable[Mapping[str, Any]],
    *,
    producer: str,
    tlp: str = "amber",
    valid_days: float = 30.0,
    now: datetime | None = None,
    fingerprints: Mapping[tuple[str, str], float] | None = None,
    salt: bytes | None = None,
) -> tuple[stix2.Bundle, dict[str, int]]:
    """The bundle of the network findings (and of ``fingerprints``: ``(kind, normalised value) ->
    score``, hashed under ``salt``) and what was skipped, by reason."""
    if tlp not in TLP:
        raise ConfigError(f"TLP must be one of {', '.join(TLP)}, not {tlp!r}")
    now = now or datetime.now(UTC)
    identity = stix2.Identity(name=producer, identity_class="organization")
    marking = TLP[tlp]
    objects: list[Any] = [identity]
    skipped: dict[str, int] = {}
    for f in findings:
        pattern = pattern_for(str(f.get("subject", "")))
        if pattern is None:
            skipped[f"{f.get('kind')}: not a network"] = skipped.get(f"{f.get('kind')}: not a network", 0) + 1
            continue
        objects.append(
            stix2.Indicator(
                name=f"geowarden {f.get('kind')} {f.get('subject')}",
                description=_summary(str(f.get("kind")), f.get("evidence") or {}),
                pattern=pattern,
                pattern_type="stix",
                indicator_types=["anonymization"],
                confidence=max(0, min(100, round(float(f.get("score", 0)) * 100))),
                valid_from=now,
                valid_until=now + timedelta(days=valid_days),
                labels=["geowarden", str(f.get("kind"))],
                created_by_ref=identity.id,
                object_marking_refs=[marking.id],
            )
        )
    if fingerprints and salt is None:
        raise ConfigError("fingerprints are only shared hashed under a salt agreed with the peer (--salt-file)")
    if fingerprints and salt is not None:
        sid = salt_id(salt)
        for (kind, value), score in sorted(fingerprints.items()):
            objects.append(
                stix2.Indicator(
                    name=f"geowarden shared {kind} fingerprint",
                    description=f"HMAC-SHA256, under the salt agreed between peers, of a {kind} that members "
                    "of a geowarden finding share",
                    pattern=f"[x-geowarden-{kind}:hmac_sha256 = '{fingerprint(salt, kind, value)}']",
                    pattern_type="stix",
                    indicator_types=["attribution"],
                    confidence=max(0, min(100, round(score * 100))),
                    valid_from=now,
                    valid_until=now + timedelta(days=valid_days),
                    labels=["geowarden", f"shared-{kind}"],
                    created_by_ref=identity.id,
                    object_marking_refs=[marking.id],
                    x_geowarden_salt_id=sid,
                    allow_custom=True,
                )
            )
    return stix2.Bundle(objects=[*objects, marking], allow_custom=bool(fingerprints)), skipped


def read_findings(path: Path) -> list[dict[str, Any]]:
    """``findings.json`` as ``analyze --out`` writes it (a list of findings)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, list) or not all(isinstance(f, dict) for f in doc):
        raise InputError(f"{path}: not a findings file (a JSON list of findings, as `analyze --out` writes)")
    return doc


def import_bundle(
    path: Path, *, peer: str, now: datetime | None = None, salt: bytes | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A peer's bundle as ``shared-indicator`` (and ``shared-fingerprint``) records, and what was
    skipped, by reason; with ``salt``, a fingerprint under another salt is skipped."""
    bundle = _read_bundle(path)
    now = now or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for obj in getattr(bundle, "objects", []) or []:
        if getattr(obj, "type", None) != "indicator":
            continue
        until = getattr(obj, "valid_until", None)
        if until is not None and until < now:
            skip("expired")
            continue
        record: dict[str, Any] = {"label": "shared-indicator", "peer": peer, "stix_id": obj.id,
                                  "confidence": getattr(obj, "confidence", None),
                                  "valid_until": until.isoformat() if until is not None else None,
                                  "tlp": next((_TLP_BY_ID[m] for m in getattr(obj, "object_marking_refs", []) or []
                                               if m in _TLP_BY_ID), None)}  # fmt: skip
        m = _ASN.match(obj.pattern)
        a = _ADDR.match(obj.pattern)
        fp = _FP.match(obj.pattern)
        if fp:
            sid = str(getattr(obj, "x_geowarden_salt_id", "") or "")
            if salt is not None and sid != salt_id(salt):
                skip("fingerprint under another salt")
                continue
            record.update(label="shared-fingerprint", kind=fp.group(1), hmac=fp.group(2), salt_id=sid or None)
        elif m:
            record["asn"] = int(m.group(1))
        elif a:
            try:
                record["network"] = str(ipaddress.ip_network(a.group(2), strict=False))
            except ValueError:
                skip("bad address in pattern")
                continue
        else:
            skip("pattern not a single network or ASN")
            continue
        out.append(record)
    return out, skipped


def _read_bundle(path: Path) -> Any:
    """The parsed bundle in ``path``; anything else (too large, not text, malformed, a single
    object) is refused with one line."""
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise InputError(f"{path}: {size:,} bytes, more than a bundle may be ({MAX_BUNDLE_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a STIX bundle (not UTF-8 text)") from None
    try:
        bundle = stix2.parse(text, allow_custom=True)
    except (STIXError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise InputError(f"{path}: not a valid STIX 2.1 bundle ({type(exc).__name__}: {reason})") from None
    except RecursionError:  # JSON nested deeper than any bundle is
        raise InputError(f"{path}: not a valid STIX 2.1 bundle (nested too deeply)") from None
    if getattr(bundle, "type", None) != "bundle":
        raise InputError(f"{path}: not a STIX bundle (a single {getattr(bundle, 'type', 'object')})")
    return bundle
