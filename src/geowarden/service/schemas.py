"""The HTTP API's types (pydantic lives here only, at the edge)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictFloat, StrictInt

from geowarden.model import Decision, Facts, RTTSample

RTTItem = tuple[
    Annotated[float, Strict(), Field(ge=-90, le=90)],
    Annotated[float, Strict(), Field(ge=-180, le=180)],
    Annotated[float, Strict(), Field(ge=0, lt=10_000)],
]

#: One round-trip time in milliseconds (a TCP handshake or an application-level ping).
RTTms = Annotated[float, Strict(), Field(ge=0, lt=10_000)]
#: A declared location: an ISO 3166-1 alpha-2 code or [lat, lon].
Claimed = (
    Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
    | tuple[Annotated[float, Strict(), Field(ge=-90, le=90)], Annotated[float, Strict(), Field(ge=-180, le=180)]]
)


def _address(value: str) -> str:
    """One IPv4 or IPv6 address (not a network, not a name), in its normal form."""
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None
    return str(ip)


#: A client address: validated at the edge (422), so a malformed one never reaches the review queue.
Address = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
    AfterValidator(_address),
]

DECISION_ID_PATTERN = r"^[0-9a-f]{32}$"
REF_PATTERN = r"^[0-9a-f]{32}\.[0-9a-f]{24}$"


class FactsIn(BaseModel):
    """What is known about one request or signup. Every field is optional."""

    model_config = ConfigDict(extra="forbid", str_max_length=512)

    ip: Address | None = Field(
        default=None, examples=["1.2.4.8"], description="Client address as seen at the edge (IPv4 or IPv6)"
    )
    timestamp: StrictFloat | StrictInt | None = Field(default=None, description="Epoch seconds")
    account_id: str | None = Field(default=None, examples=["acct-42"])
    api_key_id: str | None = Field(default=None, examples=["key-7"], description="The key's id, never its secret")
    accept_language: str | None = Field(default=None, examples=["zh-CN,zh;q=0.9"])
    timezone: str | None = Field(default=None, examples=["Asia/Shanghai"], description="IANA zone the client reports")
    user_agent: str | None = None
    phone: str | None = Field(default=None, description="E.164; stored only as a keyed hash")
    card_bin: str | None = Field(default=None, description="First 6-8 digits only; stored only as a keyed hash")
    billing_country: str | None = Field(default=None, examples=["DE"], pattern=r"^[A-Za-z]{2}$")
    email: str | None = Field(default=None, description="Stored only as a keyed hash")
    org_name: str | None = None
    org_owners: list[str] = Field(default_factory=list, max_length=100)
    rtt: list[RTTItem] = Field(
        default_factory=list, max_length=64, description="Round trips measured from PoPs: [[lat, lon, ms], ...]"
    )
    allow_token: str | None = Field(default=None, description="An allowlist token presented with the request")
    input_tokens: Annotated[StrictInt, Field(ge=0)] | Annotated[StrictFloat, Field(ge=0)] | None = Field(
        default=None, description="Prompt size in tokens: the account's volume, for the behaviour signal"
    )
    rtt_tcp_ms: list[RTTms] = Field(
        default_factory=list,
        max_length=64,
        examples=[[2.0, 2.1, 2.3]],
        description="Recent TCP handshake RTTs of this client at the edge (nginx $tcpinfo_rtt), for the tunnel gap",
    )
    rtt_app_ms: list[RTTms] = Field(
        default_factory=list,
        max_length=64,
        examples=[[80.0, 82.0]],
        description="The same client's application-level RTTs (e.g. a WebSocket ping), for the tunnel gap",
    )
    claimed: Claimed | None = Field(
        default=None, examples=["DE"], description="A declared location (country code or [lat, lon]) to verify"
    )
    payment_fingerprint: str | None = Field(
        default=None,
        max_length=128,
        description="The processor's opaque fingerprint of the account's card (never the number): links accounts",
    )
    account_created: StrictFloat | StrictInt | None = Field(
        default=None, description="Epoch seconds the account was created"
    )
    payment_accounts: (
        Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | Annotated[StrictFloat, Field(ge=0, le=2**31 - 1)] | None
    ) = Field(default=None, description="How many accounts your billing records hold on that payment instrument now")

    def to_facts(self) -> Facts:
        return Facts(
            ip=self.ip,
            timestamp=self.timestamp,
            account_id=self.account_id,
            api_key_id=self.api_key_id,
            accept_language=self.accept_language,
            timezone=self.timezone,
            user_agent=self.user_agent,
            phone=self.phone,
            card_bin=self.card_bin,
            billing_country=self.billing_country,
            email=self.email,
            org_name=self.org_name,
            org_owners=tuple(self.org_owners),
            rtt=tuple(RTTSample(lat=a, lon=b, ms=c) for a, b, c in self.rtt),
            allow_token=self.allow_token,
            input_tokens=min(float(self.input_tokens), 1e12) if self.input_tokens is not None else None,
            rtt_tcp_ms=tuple(float(x) for x in self.rtt_tcp_ms),
            rtt_app_ms=tuple(float(x) for x in self.rtt_app_ms),
            claimed=self.claimed.upper() if isinstance(self.claimed, str) else self.claimed,
            payment_fingerprint=self.payment_fingerprint,
            account_created=float(self.account_created) if self.account_created is not None else None,
            payment_accounts=int(self.payment_accounts) if self.payment_accounts is not None else None,
        )


class EvidenceOut(BaseModel):
    signal: str
    code: str = Field(examples=["IP_COUNTRY_RESTRICTED"])
    value: Any = None
    confidence: float
    detail: str
    source: str | None = None


class DecisionOut(BaseModel):
    action: Literal["allow", "limited", "challenge", "review", "block"]
    score: float = Field(ge=0, le=1)
    reasons: list[EvidenceOut]
    rules: list[str]
    user_message: str
    policy_version: str
    decision_id: str
    elapsed_us: float
    evidence: list[EvidenceOut]
    appeal_url: str | None = Field(default=None, description="For a block: where the end user can appeal, no login")
    challenge_url: str | None = Field(
        default=None, description="For a challenge of an account: where the end user passes it with a code, no login"
    )

    @classmethod
    def of(cls, d: Decision, appeal_url: str | None = None) -> DecisionOut:
        doc = d.to_dict()
        doc["appeal_url"] = appeal_url
        return cls.model_validate(doc)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["confirm", "overturn", "reopen"] = Field(
        description="confirm or overturn an open review (final); reopen a decided one (admin scope: "
        "revokes any allowlist token the review issued)"
    )
    note: str = Field(default="", max_length=2000)
    issue_token_days: float | None = Field(
        default=None,
        ge=1 / 24,
        le=365,
        description="On overturn: issue an allowlist token for the account, for this many days",
    )
    token_clears: list[Literal["restricted", "tor", "sanctions"]] = Field(
        default_factory=list,
        max_length=3,
        description="What the token may clear beyond the default (VPN, hosting, origin signals, behaviour): "
        "a restricted jurisdiction, Tor, a sanctions match. Only when the reviewer chooses it.",
    )


class ReviewOut(BaseModel):
    decision_id: str
    review: str
    allow_token: str | None = None
    token_id: str | None = Field(default=None, description="The issued token's id (what ALLOWLISTED names)")


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(pattern=REF_PATTERN, description="The signed decision reference from the appeal link")
    message: str = Field(default="", max_length=2000)


class AppealOut(BaseModel):
    received: bool
    decision_id: str


class AppealInfo(BaseModel):
    ts: float
    message: str


class QueueItem(BaseModel):
    decision_id: str
    ts: float
    action: str
    review: str
    ip: str | None
    country: str | None
    account_id: str | None
    reasons: list[str]
    rules: list[str]
    appealed: bool = False
    appeal: AppealInfo | None = Field(default=None, description="The end user's appeal, when there is one")


class DownDependency(BaseModel):
    dependency: Literal["audit", "state"]
    fail_mode: str = Field(description="What decisions do meanwhile: open (ignored), review, closed (refused)")
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    down: list[DownDependency] = Field(default_factory=list, description="Each dependency that does not answer")
    snapshot: str
    policy: str
    audit_written: int
    state: dict[str, Any] = Field(
        default_factory=dict, description="The behaviour state store: kind, ok, failures (calls it could not answer)"
    )


DECIDE_EXAMPLE = {"ip": "1.2.4.8", "account_id": "acct-42", "api_key_id": "key-7", "accept_language": "zh-CN"}


class ScreenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: list[Annotated[str, Field(max_length=20_000)]] = Field(
        min_length=1,
        max_length=100,
        examples=[["Rosoboronexport", "Huawei Technologies Co., Ltd."]],
        description="A name that cannot be screened (empty, too long, control characters) gets its own "
        "`problem`; the others are answered",
    )
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$", description="A hint, never a filter")


class MatchOut(BaseModel):
    name: str
    list: str
    score: float
    entity_id: str
    explanation: str
    verdict: Literal["match", "possible"]


class ScreenResult(BaseModel):
    query: str
    verdict: Literal["match", "possible", "none"] | None = Field(
        description="match: a policy may block; possible: for a reviewer; none; null when not screened"
    )
    score: float | None = None
    problem: str | None = Field(default=None, description="Why this name was not screened")
    matches: list[MatchOut] = Field(description="Best first, one per listed party")


class ScreenOut(BaseModel):
    results: list[ScreenResult] = Field(description="Per name, in input order")
