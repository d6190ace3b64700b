"""What the FastAPI app and the lean decide path share (``service/core.py``)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from geowarden.service.core import COOKIE, token_of

CASES = [
    ({"authorization": "Bearer gwt_a"}, "gwt_a"),
    ({"authorization": "bearer  gwt_a "}, "gwt_a"),
    ({"x-geowarden-token": "gwt_b"}, "gwt_b"),
    ({"cookie": f"theme=dark; {COOKIE}=gwt_c"}, "gwt_c"),
    ({"authorization": "Bearer gwt_a", "x-geowarden-token": "gwt_b", "cookie": f"{COOKIE}=gwt_c"}, "gwt_a"),
    ({"x-geowarden-token": "gwt_b", "cookie": f"{COOKIE}=gwt_c"}, "gwt_b"),
    ({"authorization": "Basic dXNlcjpwYXNz", "cookie": f"{COOKIE}=gwt_c"}, "gwt_c"),
    ({"cookie": "theme=dark"}, None),
    ({}, None),
]


@pytest.mark.parametrize(("headers", "token"), CASES)
def test_token_of_a_plain_dict_and_of_starlette_headers(headers: dict[str, str], token: str | None) -> None:
    assert token_of(headers) == token  # the lean path's lower-cased dict
    assert token_of(Headers(headers={k.title(): v for k, v in headers.items()})) == token  # FastAPI's request.headers
