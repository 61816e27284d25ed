"""The page and its files are served by the server itself: `/`, everything under static/, and the
official Socket.IO client from the pinned npm package; anything else is the protocol's not_found."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "node_modules" / "socket.io-client"


async def test_index_and_static_files(http, app_url):
    async with http.get(f"{app_url}/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()
    for path in ("/static/styles.css", "/static/app.js", "/static/vendor/socket.io.min.js", "/static/favicon.svg"):
        assert f'"{path}"' in html, path
    for name, kind in [("app.js", "javascript"), ("client.js", "javascript"), ("pow-worker.js", "javascript"),
                       ("styles.css", "text/css"), ("favicon.svg", "image/svg+xml")]:
        async with http.get(f"{app_url}/static/{name}") as resp:
            assert resp.status == 200, name
            assert kind in resp.content_type, (name, resp.content_type)


async def test_socket_io_client_comes_from_the_pinned_package(http, app_url):
    if not (CLIENT / "dist" / "socket.io.min.js").is_file():
        pytest.fail("node_modules/socket.io-client is missing: run `make setup` (npm ci)")
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["socket.io-client"]
    assert json.loads((CLIENT / "package.json").read_text())["version"] == pinned
    for name in ("socket.io.min.js", "socket.io.min.js.map"):
        async with http.get(f"{app_url}/static/vendor/{name}") as resp:
            assert resp.status == 200, name
            assert await resp.read() == (CLIENT / "dist" / name).read_bytes(), name
    async with http.get(f"{app_url}/static/vendor/socket.io.min.js") as resp:
        assert "javascript" in resp.content_type
        assert f"Socket.IO v{pinned}" in (await resp.text())[:200]


@pytest.mark.parametrize("path", [
    "/static/vendor/socket.io.js",
    "/static/vendor/../../app/server.py",
    "/static/vendor/%2e%2e/%2e%2e/package.json",
    "/static/%2e%2e/app/server.py",
    "/static/nothing.js",
])
async def test_anything_else_is_not_found(http, app_url, path):
    async with http.get(f"{app_url}{path}") as resp:
        assert resp.status == 404, path
        assert await resp.json() == {"error": {"code": "not_found", "message": (await resp.json())["error"]["message"]}}


@pytest.mark.parametrize("path", [
    "/static/%00",
    "/static/app.js%00.map",
    "/static/" + "a" * 300,  # one segment over the file-name limit (255 bytes)
    "/static/" + "/".join(["b" * 200] * 25),  # a path over the path limit (4096 bytes)
    "/static/" + "%C3%A9" * 130,  # 130 characters, 260 bytes once UTF-8 encoded
])
async def test_names_no_file_can_have_are_not_found(http, app_url, path, caplog):
    """Not the 503 and traceback the file system's errors (NUL byte, ENAMETOOLONG) used to give."""
    async with http.get(URL(f"{app_url}{path}", encoded=True)) as resp:
        assert resp.status == 404, path
        body = await resp.json()
        assert body == {"error": {"code": "not_found", "message": body["error"]["message"]}}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
