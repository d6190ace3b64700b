"""One-off checks: ``geowarden check`` (a decision), ``verify-location`` (is a claimed place
physically possible) and ``screen`` (names against the sanctions lists)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geowarden.cli.common import JsonOpt, QuietOpt, app_settings, emit_json, err, fail, open_warden, out, read_lines
from geowarden.errors import ConfigError, InputError
from geowarden.model import Facts


def check_cmd(
    ip: Annotated[str | None, typer.Option(help="Client IP address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number (E.164).")] = None,
    card_bin: Annotated[str | None, typer.Option("--card-bin", help="Payment card BIN (first 6-8 digits).")] = None,
    billing_country: Annotated[
        str | None, typer.Option("--billing-country", help="Billing country (ISO alpha-2).")
    ] = None,
    accept_language: Annotated[str | None, typer.Option("--accept-language", help="Accept-Language header.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Client-reported IANA time zone.")] = None,
    email: Annotated[str | None, typer.Option(help="Account email.")] = None,
    org: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key id (never the secret).")] = None,
    allow_token: Annotated[str | None, typer.Option("--allow-token", help="Allowlist token presented.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (YAML) instead of the default policy.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Decide on one request from its facts and print the Decision with its reasons."""
    if ip is not None:
        from geowarden.intel import addr  # noqa: PLC0415

        addr.parse(ip)  # a malformed address is a usage error here, not a decision
    if billing_country is not None and not (len(billing_country) == 2 and billing_country.isalpha()):
        raise ConfigError("--billing-country must be an ISO alpha-2 code such as DE")
    if card_bin is not None:
        from geowarden.signals.card import check_bin  # noqa: PLC0415

        check_bin(card_bin)  # a full card number is refused here (InputError, no digits): it goes no further
    facts = Facts(
        ip=ip,
        account_id=account,
        api_key_id=api_key,
        allow_token=allow_token,
        phone=phone,
        card_bin=card_bin,
        billing_country=billing_country.upper() if billing_country else None,
        accept_language=accept_language,
        timezone=timezone,
        email=email,
        org_name=org,
    )
    warden = open_warden(quiet, policy)
    decision = warden.decide(facts)
    if as_json:
        emit_json(decision.to_dict())
        return
    colour = {"allow": "green", "limited": "cyan", "challenge": "yellow", "review": "magenta", "block": "red"}
    out.print(f"[bold {colour[decision.action.value]}]{decision.action.value.upper()}[/] score {decision.score:.2f}")
    for ev in decision.reasons:
        out.print(f"  {ev.code}: {ev.detail}", markup=False)
    if decision.user_message:
        out.print(f"  end user sees: {decision.user_message}", markup=False)
    others = [e for e in decision.evidence if e not in decision.reasons]
    for ev in others:
        out.print(f"  [dim]{ev.code}: {ev.detail}[/dim]")
    out.print(
        f"  [dim]policy {decision.policy_version}, decision {decision.decision_id}, {decision.elapsed_us:.0f} µs[/dim]"
    )


def verify_location(
    claimed: Annotated[str | None, typer.Option(help="Claimed location: a country code (CC) or LAT,LON.")] = None,
    rtt: Annotated[list[str] | None, typer.Option(help="A measured round trip: LAT,LON=MS (repeatable).")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="JSON Lines of claims ('-' = stdin).")] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Landmark calibration (`geowarden latency calibrate`; default: the one the rtt signal uses, if any)."
        ),
    ] = None,
    no_calibration: Annotated[
        bool, typer.Option("--no-calibration", help="Every landmark on the physical bound, no ceiling.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Is a claimed location physically possible given round-trip times from known places?"""
    from geowarden.cli.latency import calibration_for  # noqa: PLC0415
    from geowarden.latency.cli import claim_from_args, parse_claim_line, verify_each  # noqa: PLC0415

    if (claimed is None) == (file is None):
        fail("give --claimed with --rtt, or --file", 2)
    cal, cal_path = calibration_for(calibration, no_calibration)  # an unusable file stops here, in one line
    if cal_path is not None and not as_json:
        err.print(f"· landmark calibration {cal_path}", style="dim", markup=False)
    claims: list[tuple[int, Any]] = []
    bad = 0
    where = "stdin" if file == "-" else file
    if file is not None:
        for n, text in read_lines(file):
            try:
                claims.append((n, parse_claim_line(text, n)))
            except InputError as exc:
                bad += 1
                err.print(f"geowarden: {where} {exc.message}", markup=False)
        if not claims and not bad:
            fail(f"{where}: no claims to verify (every line is blank or a comment)", 3)
    else:
        if not rtt:
            fail("give at least one --rtt LAT,LON=MS", 2)
        claims.append((0, claim_from_args(claimed or "", rtt)))
    results = []
    # One at a time: a claim that parsed but cannot be checked is reported, the others answered.
    for (n, _), res in zip(claims, verify_each((c for _, c in claims), calibration=cal), strict=True):
        if isinstance(res, InputError):
            bad += 1
            place = f"{where} line {n}: " if file is not None else ""
            err.print(f"geowarden: {place}{res.message}", markup=False)
        else:
            results.append(res)
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["feasible"] is None:
                verdict = f"[yellow]inconclusive[/yellow] ({r.get('inconclusive', '')})"
            elif r["feasible"]:
                verdict = "[green]feasible[/green]"
            else:
                verdict = f"[red]impossible[/red] by {r['violation_km']:,.0f} km"
            region = ", ".join(r.get("region", {}).get("countries", [])[:10])
            out.print(f"{verdict}, confidence {r['confidence']:.2f}; the client can be in: {region or '-'}")
    if bad:
        raise typer.Exit(3)


def screen_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Organisation or person names.", show_default=False)] = None,
    country: Annotated[
        str | None, typer.Option(help="The name's country (ISO alpha-2): a hint, never a filter.")
    ] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="Names one a line ('-' = stdin).")] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Sanctions lists directory (default: GEOWARDEN_SCREENING_DATA, else the installed lists)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Screen names against sanctions and export-control lists, in any script (docs/screening.md)."""
    from geowarden.screening.cli import screen_names  # noqa: PLC0415

    items = list(names or [])
    if file is not None:
        items += [text for _, text in read_lines(file)]
    if not items:
        fail("give names as arguments or --file FILE ('-' for stdin)", 2)
    lists = data or app_settings().screening_lists
    results = screen_names(items, country.upper() if country else None, directory=lists)
    if as_json:
        emit_json(results)
    else:
        for i, r in enumerate(results, 1):
            if "problem" in r:
                out.print(f"name {i}: not screened: {r['problem']}", markup=False)
                continue
            matches = r["matches"]
            assert isinstance(matches, list)
            out.print(f"{r['query']}: {r['verdict']}", markup=False)
            for m in matches[:5]:
                where = f"({m['list']}, {m['entity_id']})"
                out.print(f"  {m['verdict']} {m['score']:.2f} {m['name']} {where}: {m['explanation']}", markup=False)
    if any("problem" in r for r in results):
        raise typer.Exit(3)
