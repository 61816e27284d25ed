"""The per-address limit on public HTTP reads (HTTP_READS_PER_IP_PER_S, HTTP_READ_BURST):
profiles and leaderboards share one bucket per client address; the API key is not limited."""

from __future__ import annotations

import ipaddress

import aiohttp

from app.config import Secret

KEY = "operator-key-0123456789"
BURST = 10
# Refilled at 1 a second, the lowest rate: a slow machine may earn a read or two during the burst.
SLACK = 5


def reads(app_url: str) -> list[str]:
    """The public reads, in turn: both count against the same bucket."""
    return [f"{app_url}/api/v1/leaderboards/global", f"{app_url}/api/v1/players/nobody"]


async def read_until_limited(http: aiohttp.ClientSession, app_url: str, headers: dict | None = None,
                             most: int = BURST + SLACK) -> tuple[int, aiohttp.ClientResponse | None, dict | None]:
    """Read until a 429: (reads answered before it, the 429, its body), or no 429 within `most`."""
    urls = reads(app_url)
    for n in range(most):
        async with http.get(urls[n % 2], headers=headers) as resp:
            if resp.status == 429:
                return n, resp, await resp.json()
            assert resp.status in (200, 404), (resp.status, await resp.text())  # nobody: not_found, but read
    return most, None, None


async def test_past_the_burst_a_read_is_429_with_retry_after(start_app, settings, http):
    app = await start_app(settings, http_reads_per_ip_per_s=1, http_read_burst=BURST)
    answered, resp, body = await read_until_limited(http, app.url)
    assert resp is not None and body is not None, f"no 429 after {answered} reads"
    assert BURST <= answered < BURST + SLACK
    error = body["error"]
    assert body == {"error": {"code": "rate_limited", "message": error["message"],
                              "retry_after_ms": error["retry_after_ms"]}}
    assert 0 < error["retry_after_ms"] <= 1000
    assert resp.headers["Retry-After"] == "1"
    async with http.get(f"{app.url}/metrics") as metrics:
        assert 'scoreboard_limited_total{limit="http_reads"} ' in await metrics.text()


async def test_the_api_key_is_not_limited(start_app, settings, http):
    app = await start_app(settings, http_reads_per_ip_per_s=1, http_read_burst=BURST, api_key=Secret(KEY))
    answered, resp, _ = await read_until_limited(http, app.url, most=3 * BURST,
                                                 headers={"Authorization": f"Bearer {KEY}"})
    assert resp is None and answered == 3 * BURST
    # The same address without the key, or with a wrong one, is limited as any other.
    answered, resp, _ = await read_until_limited(http, app.url, headers={"Authorization": "Bearer wrong-key"})
    assert resp is not None and BURST <= answered < BURST + SLACK


async def test_each_client_address_has_its_own_bucket(start_app, settings, http):
    app = await start_app(settings, http_reads_per_ip_per_s=1, http_read_burst=BURST,
                          trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    first = {"X-Forwarded-For": "203.0.113.1"}
    answered, resp, _ = await read_until_limited(http, app.url, headers=first)
    assert resp is not None and BURST <= answered < BURST + SLACK
    # Another client behind the same proxy still reads; the first is still refused.
    answered, resp, _ = await read_until_limited(http, app.url, headers={"X-Forwarded-For": "203.0.113.2"},
                                                 most=BURST)
    assert resp is None and answered == BURST
    async with http.get(reads(app.url)[0], headers=first) as again:
        assert again.status == 429


async def test_zero_turns_the_limit_off(start_app, settings, http):
    app = await start_app(settings, http_reads_per_ip_per_s=0, http_read_burst=1)
    answered, resp, _ = await read_until_limited(http, app.url, most=150)
    assert resp is None and answered == 150
