from __future__ import annotations

import json
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

import pytest

from geowarden.errors import SourceError
from geowarden.policy import default_restricted
from geowarden.signals import email
from geowarden.signals.codes import CODES
from geowarden.signals.email import DomainList, EmailSignal
from helpers import facts

RESTRICTED = frozenset(default_restricted())


@dataclass(frozen=True)
class Ctx:
    restricted: Set[str] = RESTRICTED
    ip_country: str | None = None


# address, country, provider restricted, TLD restricted, disposable
ADDRESSES = [
    ("li.wei@qq.com", "CN", True, False, False),
    ("li.wei@vip.qq.com", "CN", True, False, False),  # subdomains of a provider count
    ("a@163.com", "CN", True, False, False),
    ("a@126.com", "CN", True, False, False),
    ("a@yeah.net", "CN", True, False, False),
    ("a@sina.com", "CN", True, False, False),
    ("a@sohu.com", "CN", True, False, False),
    ("a@aliyun.com", "CN", True, False, False),
    ("a@foxmail.com", "CN", True, False, False),
    ("ops@company.com.cn", "CN", False, True, False),
    ("a@corp.hk", "HK", False, True, False),
    ("a@example.mo", "MO", False, True, False),
    ("ivan@yandex.ru", "RU", True, True, False),
    ("ivan@mail.ru", "RU", True, True, False),
    ("ivan@bk.ru", "RU", True, True, False),
    ("ivan@inbox.ru", "RU", True, True, False),
    ("ivan@list.ru", "RU", True, True, False),
    ("ivan@rambler.ru", "RU", True, True, False),
    ("ivan@yandex.com", "RU", True, False, False),
    ("a@example.su", "RU", False, True, False),
    ("a@пример.рф", "RU", False, True, False),  # IDN ccTLD, by its punycode
    ("a@例子.中国", "CN", False, True, False),
    ("a@tut.by", "BY", True, True, False),
    ("ali@chmail.ir", "IR", True, True, False),
    ("a@example.ir", "IR", False, True, False),
    ("a@star.kp", "KP", False, True, False),
    ("a@example.cu", "CU", False, True, False),
    ("a@example.sy", "SY", False, True, False),
    ("john@gmail.com", None, False, False, False),
    ("hans@web.de", "DE", False, False, False),
    ("taro@example.co.jp", "JP", False, False, False),
    ("a@example.kz", "KZ", False, False, False),
    ("a@example.sg", "SG", False, False, False),
    ("a@example.co.uk", "GB", False, False, False),
    ("x@mailinator.com", None, False, False, True),
    ("x@sub.mailinator.com", None, False, False, True),
    ("x@guerrillamail.com", None, False, False, True),
]


@pytest.mark.parametrize(("address", "country", "provider", "tld", "disposable"), ADDRESSES)
def test_addresses(address: str, country: str | None, provider: bool, tld: bool, disposable: bool) -> None:
    ev = {e.code: e for e in email.evaluate(facts(email=address), Ctx())}
    assert (ev["EMAIL_COUNTRY"].value if "EMAIL_COUNTRY" in ev else None) == country
    assert ("EMAIL_PROVIDER_RESTRICTED" in ev) == provider
    assert ("EMAIL_TLD_RESTRICTED" in ev) == tld
    assert ("EMAIL_DISPOSABLE" in ev) == disposable
    assert set(ev) <= set(CODES)
    local = address.split("@", maxsplit=1)[0]
    text = json.dumps([e.to_dict() for e in ev.values()], ensure_ascii=False) + repr(list(ev.values()))
    assert f"{local}@" not in text, "the local part never appears"


def test_provider_value_and_confidence() -> None:
    (_, prov) = email.evaluate(facts(email="a@qq.com"), Ctx())
    assert prov.value == {"provider": "Tencent QQ Mail", "country": "CN"}
    assert prov.detail == "***@qq.com is at Tencent QQ Mail, a provider used mostly in CN"
    assert prov.confidence <= 0.5
    (_, yc) = email.evaluate(facts(email="a@yandex.com"), Ctx())
    assert yc.confidence < prov.confidence


def test_restricted_follows_the_policy() -> None:
    ev = {e.code for e in email.evaluate(facts(email="a@qq.com"), Ctx(restricted=frozenset({"IR"})))}
    assert ev == {"EMAIL_COUNTRY"}


@pytest.mark.parametrize(
    "address",
    ["plainaddress", "@qq.com", "a@", "a@localhost", "a b@qq.com", "a@-bad-.com", "a@1.2.3.4", "a@qq..com", "x" * 300],
)
def test_invalid(address: str) -> None:
    (ev,) = email.evaluate(facts(email=address), Ctx())
    assert ev.code == "EMAIL_INVALID"
    assert ev.value is None and address not in ev.detail


def test_masks() -> None:
    assert email.mask("Li.Wei@QQ.com") == "***@qq.com"
    assert email.mask("not an address") == "***"
    assert email.mask(None) == "***"


def test_no_email_no_evidence() -> None:
    assert email.evaluate(facts(), Ctx()) == []


def test_the_shipped_list_is_documented_data() -> None:
    d = email.default_domains()
    for domain in ("qq.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com", "aliyun.com", "yandex.ru",
                   "mail.ru", "bk.ru", "inbox.ru", "list.ru", "rambler.ru"):  # fmt: skip
        assert d.providers[domain].country in RESTRICTED
    assert len(d.disposable) > 1000
    for domain in ("qq.com", "163.com", "mail.ru", "yandex.ru", "gmail.com"):
        assert domain not in d.disposable


def test_your_own_domain_list(tmp_path: Path) -> None:
    p = tmp_path / "domains.yaml"
    p.write_text("providers:\n  example-cn-mail.com: {country: CN, provider: Example, confidence: 0.7}\ntlds: {}\n")
    sig = EmailSignal(DomainList.load(p, disposable=frozenset({"throwaway.test"})))
    ev = {e.code: e for e in sig.evaluate(facts(email="a@example-cn-mail.com"), Ctx())}
    assert ev["EMAIL_PROVIDER_RESTRICTED"].confidence == 0.7
    assert {e.code for e in sig.evaluate(facts(email="a@throwaway.test"), Ctx())} == {"EMAIL_DISPOSABLE"}
    assert sig.evaluate(facts(), Ctx()) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  x.com: {provider: no country}\n")
    with pytest.raises(SourceError, match="two-letter country"):
        DomainList.load(bad)
