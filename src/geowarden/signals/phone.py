"""The phone signal: which country a phone number belongs to, and what kind of line it is.

Offline, from Google's libphonenumber metadata (the ``phonenumbers`` package, Apache-2.0):

- the country is the *region of the number*, never the calling code alone: +7 is Russia and
  Kazakhstan (``+7 727 ...`` is Almaty, KZ; ``+7 495 ...`` is Moscow, RU), +1 is twenty-five
  countries, +44 is GB, Jersey, Guernsey and the Isle of Man;
- the line type: mobile, fixed line, VoIP, toll-free, personal (virtual "follow-me" numbers),
  ... North American numbers do not split mobile from fixed offline (``fixed_line_or_mobile``),
  and no offline data can tell a VoIP number that was ported from a mobile range;
- the *original* carrier of the number's range where known (not today's, if it was ported).

Optionally, live: a ``LineTypeProvider`` (the ``TwilioLookup`` adapter, or your own) answers the
line type and carrier of today. It is never called unless one is configured
(``PhoneSignal(provider=...)``), its answers are cached (``CachedLineTypes``), and when it fails
the offline answer stands and ``SIGNAL_UNAVAILABLE`` (value ``phone-lookup``) says so.

The number itself is personal data: it never appears in evidence, logs, errors or reprs; the
evidence shows the calling code only (``+86 ***``). Parsing is cached on the normalised text,
so a number seen again costs a dictionary look-up.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeGuard
from urllib.parse import quote

import httpx
import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import carrier as pn_carrier

from geowarden.errors import SourceError
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings

NAME = "phone"

CODES: dict[str, tuple[str, str]] = {
    "PHONE_COUNTRY": (
        NAME,
        "The country the phone number belongs to (the region of the number in libphonenumber's "
        "metadata, never the calling code alone: +7 is RU and KZ); informational.",
    ),
    "PHONE_TYPE": (
        NAME,
        "The number's line type (mobile, fixed_line, fixed_line_or_mobile, voip, voip_fixed, toll_free, "
        "personal, ...) and its original carrier where known; value: {type, carrier}; informational.",
    ),
    "PHONE_COUNTRY_RESTRICTED": (
        NAME,
        "The phone number belongs to a restricted jurisdiction. A hint, not proof: people keep their "
        "numbers when they move or travel.",
    ),
    "PHONE_VOIP": (
        NAME,
        "A VoIP or personal (virtual, follow-me) number: bought online from anywhere, tied to no SIM and no place.",
    ),
    "PHONE_INVALID": (NAME, "The phone fact is not a valid phone number in international (+CC) format."),
    "PHONE_COUNTRY_MISMATCH": (
        NAME,
        "The number's country differs from the address's country; value: {phone, ip}. Weak alone: "
        "travellers and expats keep their numbers.",
    ),
}

#: libphonenumber's number types, as geowarden names them.
TYPES: Final[dict[int, str]] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

#: Line types reported as ``PHONE_VOIP``, with the confidence of each.
VOIP_TYPES: Final[dict[str, float]] = {"voip": 0.8, "voip_fixed": 0.6, "personal": 0.6}
RESTRICTED_CONFIDENCE = 0.8
MISMATCH_CONFIDENCE = 0.3
MAX_LENGTH = 40  # longer text is not a phone number; it is not parsed (nor cached)
LOOKUP_UNAVAILABLE = "phone-lookup"  # the SIGNAL_UNAVAILABLE value when a live provider fails

_STRIP = str.maketrans("", "", " -().\u00a0\t/")


# -- offline parsing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """What libphonenumber says about one number. ``e164`` is the number itself: it is kept out
    of ``repr`` and only ever handed to a configured live provider or an OTP sender."""

    valid: bool
    country: str  # ISO 3166-1 alpha-2, "" when none (invalid, or a non-geographic +800/+882 number)
    calling_code: int  # 0 when it could not be read
    type: str  # one of TYPES' values
    carrier: str  # the original carrier of the number's range, "" when unknown
    reason: str = ""  # why it is not valid
    e164: str = field(default="", repr=False)

    @property
    def masked(self) -> str:
        """The number as evidence and logs may show it: the calling code only."""
        return f"+{self.calling_code} ***" if self.calling_code else "+***"


def normalise(text: str) -> str:
    """The number without spaces, dashes, dots and brackets; a leading ``00`` becomes ``+``."""
    s = text.strip().translate(_STRIP)
    if s.startswith("00"):
        s = "+" + s[2:]
    return s


def parse(text: str) -> PhoneInfo:
    """Parse a number given in international format; cached on the normalised text."""
    s = normalise(text)
    if len(s) > MAX_LENGTH:
        return PhoneInfo(False, "", 0, "unknown", "", "too long to be a phone number")
    return _parse(s)


@functools.lru_cache(maxsize=65536)
def _parse(s: str) -> PhoneInfo:
    if not s.startswith("+"):
        return PhoneInfo(False, "", 0, "unknown", "", "not in international format (+ and the calling code)")
    try:
        num = phonenumbers.parse(s, None)
    except phonenumbers.NumberParseException:
        return PhoneInfo(False, "", 0, "unknown", "", "not a phone number")
    code = int(num.country_code or 0)
    if not phonenumbers.is_valid_number(num):
        return PhoneInfo(False, "", code, "unknown", "", "not a valid number for its calling code")
    region = phonenumbers.region_code_for_number(num) or ""
    if region == "001":  # non-geographic: international freephone, satellite, global networks
        region = ""
    return PhoneInfo(
        valid=True,
        country=region,
        calling_code=code,
        type=TYPES.get(phonenumbers.number_type(num), "unknown"),
        carrier=pn_carrier.name_for_number(num, "en") or "",
        e164=phonenumbers.format_number(num, PhoneNumberFormat.E164),
    )


def mask(text: str | None) -> str:
    """A phone number as it may be shown anywhere: ``+86 ***``."""
    return parse(text).masked if text else "+***"


# -- live line type --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LineType:
    """A live provider's answer about a number."""

    type: str  # one of TYPES' values, or voip_fixed
    carrier: str | None = None
    mobile_country_code: str | None = None


class LineTypeProvider(Protocol):
    """A live line-type look-up (carrier databases: mobile, landline, VoIP, ... of today).

    ``line_type`` gets the number in E.164 and raises on failure (any exception: the signal keeps
    its offline answer and reports the provider unavailable). Implementations must not log the
    number."""

    @property
    def name(self) -> str: ...

    def line_type(self, e164: str) -> LineType: ...


class PhoneLookupError(SourceError):
    """A live phone look-up failed (network, credentials, quota). Never carries the number."""


#: Twilio Lookup v2 ``line_type_intelligence.type`` values, as geowarden names them.
TWILIO_TYPES: Final[dict[str, str]] = {
    "mobile": "mobile",
    "landline": "fixed_line",
    "fixedVoip": "voip_fixed",
    "nonFixedVoip": "voip",
    "personal": "personal",
    "tollFree": "toll_free",
    "premium": "premium_rate",
    "sharedCost": "shared_cost",
    "uan": "uan",
    "voicemail": "voicemail",
    "pager": "pager",
    "unknown": "unknown",
}


class TwilioLookup:
    """``LineTypeProvider`` over Twilio Lookup v2 with the Line Type Intelligence package.

    ``GET {base}/v2/PhoneNumbers/{E.164}?Fields=line_type_intelligence`` with HTTP basic auth
    (an API key SID and secret, or the account SID and auth token). One call costs money and
    about 100-300 ms: wrap it in ``CachedLineTypes`` and consider using it at signup only.

    The number is in the URL path, which httpx logs at INFO: a filter on the ``httpx`` logger
    (installed when this class is first built) replaces it with ``REDACTED``. Errors never
    carry the number or the provider's message (which may quote it)."""

    name = "twilio-lookup"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        client: httpx.Client | None = None,
        base_url: str = "https://lookups.twilio.com",
        timeout: float = 3.0,
    ) -> None:
        self._client = client or httpx.Client(timeout=timeout)
        self._auth = httpx.BasicAuth(username, password)
        self._base = base_url.rstrip("/")
        install_url_redaction()

    def __repr__(self) -> str:
        return f"TwilioLookup(base_url={self._base!r})"

    def line_type(self, e164: str) -> LineType:
        url = f"{self._base}/v2/PhoneNumbers/{quote(e164, safe='')}"
        try:
            resp = self._client.get(url, params={"Fields": "line_type_intelligence"}, auth=self._auth)
        except httpx.HTTPError as exc:
            raise PhoneLookupError(f"{self.name}: request failed ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise PhoneLookupError(f"{self.name}: HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            raise PhoneLookupError(f"{self.name}: the answer is not JSON") from None
        lti = doc.get("line_type_intelligence") if isinstance(doc, dict) else None
        if not isinstance(lti, dict):
            raise PhoneLookupError(f"{self.name}: no line_type_intelligence in the answer")
        if lti.get("error_code"):
            raise PhoneLookupError(f"{self.name}: error code {int(lti['error_code'])}")
        return LineType(
            type=TWILIO_TYPES.get(str(lti.get("type")), "unknown"),
            carrier=_str_or_none(lti.get("carrier_name")),
            mobile_country_code=_str_or_none(lti.get("mobile_country_code")),
        )


class CachedLineTypes:
    """A ``LineTypeProvider`` that remembers its provider's answers (LRU, with an expiry).

    Failures are not cached. Thread-safe. Keys are E.164 numbers held in this process's memory
    only."""

    def __init__(
        self,
        provider: LineTypeProvider,
        *,
        ttl_s: float = 7 * 86400,
        maxsize: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.ttl_s = ttl_s
        self.maxsize = maxsize
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, LineType]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.provider.name

    def line_type(self, e164: str) -> LineType:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(e164)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(e164)
                return hit[1]
        answer = self.provider.line_type(e164)
        with self._lock:
            self._cache[e164] = (now + self.ttl_s, answer)
            self._cache.move_to_end(e164)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return answer


class _RedactPhoneNumberURLs(logging.Filter):
    """Replaces the number in ``.../PhoneNumbers/<number>`` URLs that httpx logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_is_lookup_url(a) for a in args):
            record.args = tuple(_redacted(a) if _is_lookup_url(a) else a for a in args)
        return True


def _is_lookup_url(value: object) -> TypeGuard[httpx.URL]:
    return isinstance(value, httpx.URL) and "/PhoneNumbers/" in value.path


def _redacted(url: httpx.URL) -> httpx.URL:
    head = url.path.split("/PhoneNumbers/", 1)[0]
    return url.copy_with(path=f"{head}/PhoneNumbers/REDACTED")


_REDACTION = _RedactPhoneNumberURLs()


def install_url_redaction() -> None:
    """Make the ``httpx`` logger redact phone numbers in look-up URLs (idempotent)."""
    logger = logging.getLogger("httpx")
    if _REDACTION not in logger.filters:
        logger.addFilter(_REDACTION)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# -- the signal ------------------------------------------------------------------------------


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
    """Evidence about ``facts.phone`` from offline data only; empty when no number was given."""
    return _evidence(facts, ctx, None)


class PhoneSignal(BaseSignal):
    """The phone signal, offline by default or with a live line-type provider
    (``PhoneSignal(TwilioLookup(...))``), and its CEL variable ``phone``: ``present``, ``valid``,
    ``country``, ``type`` (mobile, fixed_line, fixed_line_or_mobile, voip, ...), ``restricted``,
    ``voip``, ``mismatch`` (its country is not the address's)."""

    name = NAME
    codes = meanings(CODES)
    variable = "phone"
    hint_codes = frozenset({"PHONE_COUNTRY_RESTRICTED"})

    def __init__(self, provider: LineTypeProvider | None = None) -> None:
        self.provider = provider

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        return _evidence(facts, ctx, self.provider)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        codes = found.codes
        return {
            "present": facts.phone is not None,
            "valid": "PHONE_TYPE" in codes,
            "country": found.text("PHONE_COUNTRY"),
            "type": _text(found.mapping("PHONE_TYPE").get("type")),
            "restricted": "PHONE_COUNTRY_RESTRICTED" in codes,
            "voip": "PHONE_VOIP" in codes,
            "mismatch": "PHONE_COUNTRY_MISMATCH" in codes,
        }


def _evidence(facts: Facts, ctx: SignalContext, provider: LineTypeProvider | None) -> list[Evidence]:
    if facts.phone is None:
        return []
    info = parse(facts.phone)
    if not info.valid:
        return [Evidence(signal=NAME, code="PHONE_INVALID", confidence=1.0, detail=f"{info.masked}: {info.reason}")]
    out: list[Evidence] = []
    line_type, carrier, source = info.type, info.carrier, "libphonenumber"
    if provider is not None:
        try:
            live = provider.line_type(info.e164)
        except Exception as exc:  # a provider failing must not cost the offline evidence
            out.append(
                Evidence(
                    signal=NAME,
                    code="SIGNAL_UNAVAILABLE",
                    value=LOOKUP_UNAVAILABLE,
                    detail=f"the live line-type look-up ({provider.name}) could not answer "
                    f"({type(exc).__name__}); offline data used",
                )
            )
        else:
            if live.type != "unknown":
                line_type, source = live.type, provider.name
            carrier = live.carrier or carrier
    masked, cc = info.masked, info.country
    if cc:
        out.append(
            Evidence(
                signal=NAME, code="PHONE_COUNTRY", value=cc, confidence=1.0, detail=f"{masked} is a number of {cc}"
            )
        )
    described = line_type.replace("_", " ") + (f", {carrier}" if carrier else "")
    out.append(
        Evidence(
            signal=NAME,
            code="PHONE_TYPE",
            value={"type": line_type, "carrier": carrier or None},
            confidence=1.0,
            detail=f"{masked}: {described}",
            source=source,
        )
    )
    if cc and cc in ctx.restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="PHONE_COUNTRY_RESTRICTED",
                value=cc,
                confidence=RESTRICTED_CONFIDENCE,
                detail=f"{masked} is a number of restricted jurisdiction {cc}",
            )
        )
    if line_type in VOIP_TYPES:
        out.append(
            Evidence(
                signal=NAME,
                code="PHONE_VOIP",
                value=line_type,
                confidence=VOIP_TYPES[line_type],
                detail=f"{masked} is a {line_type.replace('_', ' ')} number",
                source=source,
            )
        )
    ip = ctx.ip_country
    if cc and ip and cc != ip:
        out.append(
            Evidence(
                signal=NAME,
                code="PHONE_COUNTRY_MISMATCH",
                value={"phone": cc, "ip": ip},
                confidence=MISMATCH_CONFIDENCE,
                detail=f"{masked} is a number of {cc}; the address is in {ip}",
            )
        )
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


SIGNAL = PhoneSignal()
