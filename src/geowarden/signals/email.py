"""The email signal: what the address's domain says about where its owner is.

- **Providers** mostly used in restricted jurisdictions (qq.com, 163.com, mail.ru, yandex.ru,
  ...): the editable list ``data/email_domains.yaml`` (shipped, with the country of each). A
  domain matches itself and its subdomains.
- **Country-code TLDs** of restricted jurisdictions (.cn, .ru, .su, .рф, .ir, .by, .kp, .cu, .sy,
  .hk, .mo; which ones count follows the policy's jurisdictions).
- **Disposable** (throwaway) domains, from the ``disposable-email-domains`` package (MIT; a
  mirror of the community-maintained list, CC0).

The address is personal data: evidence shows only the domain (``***@qq.com``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import disposable_email_domains
import yaml

from geowarden.errors import SourceError
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings

NAME = "email"

CODES: dict[str, tuple[str, str]] = {
    "EMAIL_COUNTRY": (
        NAME,
        "The country the address's domain points to: its mail provider's (shipped list) or its "
        "country-code TLD's; informational.",
    ),
    "EMAIL_PROVIDER_RESTRICTED": (
        NAME,
        "The address is at a mail provider used mostly in a restricted jurisdiction (qq.com, 163.com, "
        "mail.ru, yandex.ru, ...); value: {provider, country}. Weak alone: emigrants keep their mailboxes.",
    ),
    "EMAIL_TLD_RESTRICTED": (
        NAME,
        "The address's domain is under the country-code TLD of a restricted jurisdiction (.cn, .ru, .su, "
        ".рф, .ir, .by, .kp, .cu, .sy, .hk, .mo).",
    ),
    "EMAIL_DISPOSABLE": (NAME, "The address is at a disposable (throwaway) mail domain."),
    "EMAIL_INVALID": (NAME, "The email fact is not an email address."),
}

DOMAINS_FILE = Path(__file__).with_name("data") / "email_domains.yaml"
TLD_CONFIDENCE = 0.6
DISPOSABLE_CONFIDENCE = 0.9
DEFAULT_PROVIDER_CONFIDENCE = 0.5
MAX_LENGTH: Final = 254  # RFC 5321 path limit
_DISPOSABLE: Set[str] = disposable_email_domains.blocklist
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True)
class Provider:
    domain: str
    country: str
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """What is known about one domain (ASCII, lower case)."""

    domain: str
    valid: bool
    provider: Provider | None
    tld_country: str | None
    disposable: bool

    @property
    def country(self) -> str | None:
        return self.provider.country if self.provider is not None else self.tld_country


class DomainList:
    """Mail providers and ccTLD exceptions (``data/email_domains.yaml`` or your copy of it), plus
    the disposable domains."""

    def __init__(
        self, providers: dict[str, Provider], tlds: dict[str, str], disposable: Set[str] = _DISPOSABLE
    ) -> None:
        self.providers = providers
        self.tlds = tlds
        self.disposable = disposable
        self.lookup = functools.lru_cache(maxsize=16384)(self._lookup)

    @classmethod
    def load(cls, path: Path = DOMAINS_FILE, *, disposable: Set[str] = _DISPOSABLE) -> DomainList:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SourceError(f"{path}: cannot read the email domain list ({type(exc).__name__})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("providers", {}), dict):
            raise SourceError(f"{path}: expected mappings 'providers' and 'tlds'")
        providers: dict[str, Provider] = {}
        for domain, body in (raw.get("providers") or {}).items():
            cc = body.get("country") if isinstance(body, dict) else None
            if not (isinstance(cc, str) and len(cc) == 2):
                raise SourceError(f"{path}: provider {domain!r} needs a two-letter country")
            conf = body.get("confidence", DEFAULT_PROVIDER_CONFIDENCE)
            if not isinstance(conf, (int, float)) or not 0 < conf <= 1:
                raise SourceError(f"{path}: provider {domain!r}: confidence is a number in (0, 1]")
            d = str(domain).strip().lower()
            providers[d] = Provider(d, cc.upper(), str(body.get("provider", d)), float(conf))
        tlds_raw = raw.get("tlds") or {}
        if not isinstance(tlds_raw, dict):
            raise SourceError(f"{path}: 'tlds' maps TLDs to countries")
        tlds = {str(k).strip().lower().lstrip("."): str(v).upper() for k, v in tlds_raw.items()}
        return cls(providers, tlds, disposable)

    def _lookup(self, domain: str) -> DomainInfo:
        labels = domain.split(".")
        provider = None
        disposable = False
        for i in range(len(labels) - 1):
            suffix = ".".join(labels[i:])
            if provider is None:
                provider = self.providers.get(suffix)
            if not disposable and suffix in self.disposable:
                disposable = True
        tld = labels[-1]
        cc = self.tlds.get(tld) or (tld.upper() if len(tld) == 2 and tld.isalpha() else None)
        return DomainInfo(domain, True, provider, cc, disposable)


_DEFAULT: list[DomainList] = []
_LOCK = threading.Lock()


def default_domains() -> DomainList:
    """The shipped list (read once)."""
    if not _DEFAULT:
        with _LOCK:
            if not _DEFAULT:
                _DEFAULT.append(DomainList.load())
    return _DEFAULT[0]


def domain_of(address: str) -> str | None:
    """The address's domain in ASCII lower case (IDNs in punycode), or None when it is not an
    address."""
    text = address.strip()
    if not 3 <= len(text) <= MAX_LENGTH or any(ch.isspace() for ch in text):
        return None
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        return None
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        ascii_domain = _punycode(domain)
        if ascii_domain is None:
            return None
        domain = ascii_domain
    labels = domain.split(".")
    if len(labels) < 2 or not all(
        0 < len(lab) <= 63 and set(lab) <= _LABEL_CHARS and lab[0] != "-" and lab[-1] != "-" for lab in labels
    ):
        return None
    if labels[-1].isdigit():  # an address literal or a bare IP: not a mail domain
        return None
    return domain


@functools.lru_cache(maxsize=4096)
def _punycode(domain: str) -> str | None:
    """An internationalised domain in ASCII (IDNA 2003, as Python's codec does it); cached: the
    codec costs tens of microseconds."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def mask(address: str | None) -> str:
    """An address as it may be shown anywhere: ``***@qq.com``."""
    domain = domain_of(address) if address else None
    return f"***@{domain}" if domain else "***"


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
    """Evidence about ``facts.email`` with the shipped domain list; empty without an email."""
    if facts.email is None:
        return []
    return _evidence(facts.email, ctx, default_domains())


class EmailSignal(BaseSignal):
    """The email signal, with the shipped domain list or your own
    (``EmailSignal(DomainList.load(path))``), and its CEL variable ``email``: ``present``,
    ``valid``, ``country`` (of its provider or ccTLD), ``provider_restricted``,
    ``tld_restricted``, ``disposable``."""

    name = NAME
    codes = meanings(CODES)
    variable = "email"
    hint_codes = frozenset({"EMAIL_PROVIDER_RESTRICTED", "EMAIL_TLD_RESTRICTED"})

    def __init__(self, domains: DomainList | None = None) -> None:
        self._domains = domains  # the shipped list is loaded at the first email seen

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        if facts.email is None:
            return []
        return _evidence(facts.email, ctx, self._domains or default_domains())

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        codes = found.codes
        unavailable = any(e.code == "SIGNAL_UNAVAILABLE" and e.value == NAME for e in found.evidence)
        return {
            "present": facts.email is not None,
            "valid": facts.email is not None and "EMAIL_INVALID" not in codes and not unavailable,
            "country": found.text("EMAIL_COUNTRY"),
            "provider_restricted": "EMAIL_PROVIDER_RESTRICTED" in codes,
            "tld_restricted": "EMAIL_TLD_RESTRICTED" in codes,
            "disposable": "EMAIL_DISPOSABLE" in codes,
        }


def _evidence(address: str, ctx: SignalContext, domains: DomainList) -> list[Evidence]:
    domain = domain_of(address)
    if domain is None:
        return [Evidence(signal=NAME, code="EMAIL_INVALID", confidence=1.0, detail="the email fact is not an address")]
    info = domains.lookup(domain)
    shown = f"***@{domain}"
    out: list[Evidence] = []
    country = info.country
    if country:
        who = f"{info.provider.name}, " if info.provider else "country-code TLD, "
        out.append(
            Evidence(
                signal=NAME, code="EMAIL_COUNTRY", value=country, confidence=1.0, detail=f"{shown}: {who}{country}"
            )
        )
    restricted = ctx.restricted
    prov = info.provider
    if prov is not None and prov.country in restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="EMAIL_PROVIDER_RESTRICTED",
                value={"provider": prov.name, "country": prov.country},
                confidence=prov.confidence,
                detail=f"{shown} is at {prov.name}, a provider used mostly in {prov.country}",
            )
        )
    if info.tld_country is not None and info.tld_country in restricted:
        out.append(
            Evidence(
                signal=NAME,
                code="EMAIL_TLD_RESTRICTED",
                value=info.tld_country,
                confidence=TLD_CONFIDENCE,
                detail=f"{shown} is under the TLD of restricted jurisdiction {info.tld_country}",
            )
        )
    if info.disposable:
        out.append(
            Evidence(
                signal=NAME,
                code="EMAIL_DISPOSABLE",
                value=shown,
                confidence=DISPOSABLE_CONFIDENCE,
                detail=f"{shown} is a disposable mail domain",
                source="disposable-email-domains",
            )
        )
    return out


SIGNAL = EmailSignal()


#: The largest free-mail providers (a domain matches itself and its subdomains): an address there
#: says nothing about an employer. The analytics' organisations and the group signal's throwaway
#: identities read it.
FREE_MAIL: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
        "yahoo.co.jp", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "t-online.de",
        "mail.com", "zoho.com", "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "sina.com",
        "naver.com", "daum.net", "orange.fr", "free.fr", "laposte.net", "libero.it", "uol.com.br", "bol.com.br",
        "rediffmail.com", "tutanota.com", "fastmail.com", "hey.com",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=65536)
def organisational_candidate(domain: str | None) -> bool:
    """Whether a domain could be an organisation's by itself: not free-mail, not disposable and not
    a restricted country's mail provider (the analytics add a crowd test: ``analytics.orgs``)."""
    if not domain or "." not in domain:
        return False
    d = domain.strip().lower()
    labels = d.split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    if any(x in FREE_MAIL or x in disposable_email_domains.blocklist for x in suffixes):
        return False
    return default_domains().lookup(d).provider is None
