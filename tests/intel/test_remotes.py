"""The download table of ``intel update``: the packaged ``downloads.yaml`` and its checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.errors import ConfigError
from geowarden.intel.remotes import Check, load_remotes, packaged_remotes, parse_remotes

GOOD = """
remotes:
  - name: aws
    url: https://ip-ranges.amazonaws.com/ip-ranges.json
    dest: cloud/aws-ip-ranges.json
    check: json
    licence: provider terms
"""


def test_the_packaged_table_loads() -> None:
    remotes = packaged_remotes()
    names = [r.name for r in remotes]
    assert len(names) == len(set(names)) == 18
    assert [r.name for r in remotes if r.required] == ["dbip-country", "dbip-asn"] == names[:2]
    by_name = {r.name: r for r in remotes}
    assert by_name["dbip-country"].gzip and by_name["dbip-country"].check is Check.MMDB_COUNTRY
    assert "{month}" in by_name["dbip-asn"].url
    assert by_name["rir-arin"].md5 and by_name["rir-arin"].licence == "NRO/RIR public statistics"
    assert by_name["tor-exits"].dest == "anonymizers/tor/exit-nodes-{date}.txt"
    assert all(r.url.startswith("https://") for r in remotes)
    assert by_name["apple-relay"].check is Check.GEOFEED and by_name["apple-relay"].dest == "cloud/egress-ip-ranges.csv"


def test_a_table_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "downloads.yaml"
    path.write_text(GOOD)
    (remote,) = load_remotes(path)
    assert (remote.name, remote.check, remote.required, remote.gzip, remote.md5) == (
        "aws",
        Check.JSON,
        False,
        False,
        False,
    )
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_remotes(tmp_path / "missing.yaml")
    assert info.value.context["file"] == str(tmp_path / "missing.yaml")


BAD = [
    ("remotes: [", "t.yaml:1: not valid YAML"),
    ("other: 1", "t.yaml: expected a non-empty list under 'remotes'"),
    ("remotes: []", "t.yaml: expected a non-empty list under 'remotes'"),
    ("remotes: [3]", "t.yaml: remotes[0]: expected a mapping"),
    (GOOD.replace("check: json", "check: xml"), "t.yaml: remotes[0] (aws): check 'xml' is not one of mmdb-country"),
    (
        GOOD.replace("check: json", "check: json\n    gzip: yes please"),
        "t.yaml: remotes[0] (aws): gzip must be true or false",
    ),
    (GOOD.replace("check: json", "check: json\n    sha: abc"), "t.yaml: remotes[0] (aws): unknown field sha"),
    (
        GOOD.replace("licence: provider terms", "licence: ''"),
        "t.yaml: remotes[0] (aws): licence must be a non-empty string",
    ),
    (GOOD.replace("https://", "http://"), "t.yaml: remotes[0] (aws): url must start with https://"),
    (GOOD.replace("dest: cloud/", "dest: ../"), "t.yaml: remotes[0] (aws): dest must be a relative path"),
    (GOOD + GOOD.removeprefix("\nremotes:\n"), "t.yaml: duplicate remote names: aws"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_table_is_one_line_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_remotes(text, "t.yaml")
    assert info.value.message.startswith(message)
    assert "\n" not in info.value.message
    assert info.value.context["file"] == "t.yaml"
