"""Authentication, authorization and XSRF on every lepton route."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketHandler

from lepton_nb.server._routes import routes

pytestmark = pytest.mark.integration

ROUTES: list[tuple[str, tuple[str, ...], str | None]] = [
    ("GET", ("clusters",), None),
    ("POST", ("clusters",), '{"n_workers": 1, "gpu": "off"}'),
    ("GET", ("clusters", "abc"), None),
    ("PATCH", ("clusters", "abc"), '{"n_workers": 1}'),
    ("DELETE", ("clusters", "abc"), None),
    ("GET", ("jobs",), None),
    ("POST", ("jobs",), '{"notebook": "nb.ipynb"}'),
    ("GET", ("jobs", "abc"), None),
    ("DELETE", ("jobs", "abc"), None),
    ("POST", ("jobs", "abc", "rerun"), None),
]
MUTATING = [r for r in ROUTES if r[0] != "GET"]


class ReadOnlyAuthorizer(Authorizer):
    """Allows reads of every resource and denies every write."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


@pytest.fixture
def jp_server_config(tmp_home: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    app: dict[str, Any] = {
        "jpserver_extensions": {"lepton_nb": True, "jupyter_server_terminals": False},
        "allow_unauthenticated_access": False,
    }
    if "read_only" in request.fixturenames:
        app["authorizer_class"] = ReadOnlyAuthorizer
    return {"ServerApp": app}


async def _code(
    jp_fetch: Any, method: str, parts: tuple[str, ...], body: str | None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    if body is None and method in ("POST", "PATCH"):
        body = "{}"
    try:
        r = await jp_fetch("lepton", "api", *parts, method=method, body=body, **kw)
    except HTTPClientError as e:
        assert e.response is not None
        text = e.response.body.decode() if e.response.body else "{}"
        return e.code, json.loads(text) if text.startswith("{") else {"raw": text}
    return r.code, json.loads(r.body)


def test_every_method_is_authenticated_and_authorized() -> None:
    # jupyter_server only accepts methods whose outermost decorator is @web.authenticated
    # when allow_unauthenticated_access is False; check that none would warn.
    # Every handler of the route table, so a new route is checked without being listed here.
    handlers = {handler for _, handler in routes("/")}
    assert len(handlers) >= 10, handlers
    for handler in handlers:
        for name in ("get", "post", "put", "patch", "delete"):
            method = handler.__dict__.get(name)
            if method is None:
                continue
            if issubclass(handler, WebSocketHandler):  # the upgrade request: ws_authenticated
                assert method.__code__.co_qualname.startswith("ws_authenticated"), (handler, name)
                continue
            assert method.__code__.co_qualname.startswith("authenticated"), (handler, name)
            assert "authorized" in method.__wrapped__.__code__.co_qualname, (handler, name)


async def test_loading_raises_no_auth_warning(jp_serverapp: Any, jp_fetch: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from lepton_nb.server import LeptonApp

        # Loading again onto the same app re-registers the routes and must not warn.
        LeptonApp._load_jupyter_server_extension(jp_serverapp)
    code, body = await _code(jp_fetch, "GET", ("clusters",), None)
    assert (code, body) == (200, [])


@pytest.mark.parametrize(("method", "parts", "body"), ROUTES)
async def test_unauthenticated_is_403(
    jp_fetch: Any, method: str, parts: tuple[str, ...], body: str | None
) -> None:
    code, _ = await _code(jp_fetch, method, parts, body, headers={"Authorization": ""})
    assert code == 403


@pytest.fixture
def read_only() -> None:
    """Requesting this fixture makes jp_server_config install ReadOnlyAuthorizer."""


@pytest.mark.usefixtures("read_only")
@pytest.mark.parametrize(("method", "parts", "body"), MUTATING)
async def test_read_only_authorizer_denies_writes(
    jp_fetch: Any, method: str, parts: tuple[str, ...], body: str | None
) -> None:
    code, _ = await _code(jp_fetch, method, parts, body)
    assert code == 403


@pytest.mark.usefixtures("read_only")
async def test_read_only_authorizer_allows_reads(jp_fetch: Any) -> None:
    assert (await _code(jp_fetch, "GET", ("clusters",), None))[0] == 200
    assert (await _code(jp_fetch, "GET", ("clusters", "nope"), None))[0] == 404


async def _login_cookie(jp_fetch: Any, jp_serverapp: Any) -> tuple[str, str]:
    """Log in with the token the way a browser does and return (cookie header, xsrf token)."""
    token = jp_serverapp.identity_provider.token
    r = await jp_fetch("login", headers={"Authorization": ""})
    cookies = {c.split("=", 1)[0]: c.split(";")[0] for c in r.headers.get_list("Set-Cookie")}
    xsrf = cookies["_xsrf"].split("=", 1)[1]
    try:
        await jp_fetch(
            "login",
            method="POST",
            follow_redirects=False,
            headers={
                "Authorization": "",
                "Cookie": cookies["_xsrf"],
                "Content-Type": "application/x-www-form-urlencoded",
            },
            body=f"_xsrf={xsrf}&password={token}",
        )
    except HTTPClientError as e:  # a successful login answers with a redirect
        assert e.code == 302 and e.response is not None
        for c in e.response.headers.get_list("Set-Cookie"):
            cookies[c.split("=", 1)[0]] = c.split(";")[0]
    login = [v for k, v in cookies.items() if k.startswith("username-")]
    assert login, cookies
    return f"{login[0]}; {cookies['_xsrf']}", xsrf


@pytest.mark.parametrize(("method", "parts", "body"), MUTATING)
async def test_cookie_write_without_xsrf_is_403(
    jp_fetch: Any, jp_serverapp: Any, method: str, parts: tuple[str, ...], body: str | None
) -> None:
    cookie, xsrf = await _login_cookie(jp_fetch, jp_serverapp)
    # The cookie alone authenticates reads...
    code, _ = await _code(
        jp_fetch, "GET", ("clusters",), None, headers={"Authorization": "", "Cookie": cookie}
    )
    assert code == 200
    # ...but a write without the X-XSRFToken header is refused before reaching the handler.
    code, _ = await _code(
        jp_fetch, method, parts, body, headers={"Authorization": "", "Cookie": cookie}
    )
    assert code == 403
    # With the header the same request reaches the handler (which then refuses "abc").
    code, _ = await _code(
        jp_fetch,
        method,
        parts,
        '{"n_workers": 0}' if body else body,
        headers={"Authorization": "", "Cookie": cookie, "X-XSRFToken": xsrf},
    )
    assert code in (400, 404, 409)
