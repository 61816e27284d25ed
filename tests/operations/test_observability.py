"""Observability (issue 5): structured JSON logs, one line per event, with player and action
ids and no tokens or secrets; Prometheus metrics for connections by transport, events by
type and outcome, the completion latency histogram, flush duration, queue depth, the lease
holder, and refusals by reason.

Metric names and labels are the ones in app/metrics.py; operators' dashboards and alerts
are written against them, so a rename fails here.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from itertools import count
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.anticheat.proof import proof_ok, solve
from app.config import Settings
from tests.processes import Instance
from tests.support import Client, create_session, eventually, open_client

Samples = dict[tuple[str, frozenset], float]


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(f"{url}/metrics") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels, or None when the scrape does not have it."""
    return samples.get((name, frozenset(labels.items())))


def marked_proof(token: str, difficulty: int, mark: str) -> str:
    """A valid proof that is easy to search for in a log (a bare number is everywhere)."""
    for n in count():
        proof = f"{mark}{n}"
        if proof_ok(token, proof, difficulty):
            return proof
    raise AssertionError("unreachable")


def wrong_proof(token: str, difficulty: int, mark: str) -> str:
    """A proof that certainly fails (a fixed string passes 4 bits once in 16 tokens)."""
    for n in count():
        proof = f"{mark}{n}"
        if not proof_ok(token, proof, difficulty):
            return proof
    raise AssertionError("unreachable")


async def close_polling(client: Client) -> None:
    """python-engineio's polling client waits for its pending long-poll GET on disconnect,
    which the server only answers with its next ping (~25 s); abort it instead. The
    server still gets the engine.io close packet and runs its disconnect handler."""
    if client.sio.connected:
        await client.sio.eio.disconnect(abort=True)


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_cover_transports_events_latency_refusals_and_the_flusher(
        app_url: str, player, http: aiohttp.ClientSession) -> None:
    _session, ws_client = await player()
    polling = await open_client(app_url, transports=["polling"])  # a spectator on long-polling only
    try:
        await _check_metrics(app_url, ws_client, http)
    finally:
        await close_polling(polling)

    async def gone() -> None:
        samples = await scrape(http, app_url)
        assert value(samples, "scoreboard_transport_connections", transport="polling") == 0
        assert value(samples, "scoreboard_connections", role="spectator") == 0

    await eventually(gone)


async def _check_metrics(app_url: str, ws_client: Client, http: aiohttp.ClientSession) -> None:
    first = await scrape(http, app_url)
    # Sampled from engine.io at scrape time; a polling client that never upgrades stays "polling".
    assert value(first, "scoreboard_transport_connections", transport="websocket") == 1, first
    assert value(first, "scoreboard_transport_connections", transport="polling") == 1, first
    assert value(first, "scoreboard_connections", role="player") == 1
    assert value(first, "scoreboard_connections", role="spectator") == 1

    # One credited completion: an event with outcome ok, one latency observation, one credit.
    challenge, ack = await ws_client.play("quick")
    assert ack["ok"] and ack["points"] == 10 and ack["duplicate"] is False, ack
    after_credit = await scrape(http, app_url)
    assert value(after_credit, "scoreboard_events_total", event="action:complete", outcome="ok") == 1
    assert value(after_credit, "scoreboard_events_total", event="action:start", outcome="ok") == 1
    assert value(after_credit, "scoreboard_event_seconds_count", event="action:complete") == 1
    latency_sum = value(after_credit, "scoreboard_event_seconds_sum", event="action:complete")
    assert latency_sum is not None and latency_sum > 0
    assert value(after_credit, "scoreboard_event_seconds_bucket", event="action:complete", le="+Inf") == 1
    assert value(after_credit, "scoreboard_actions_total", outcome="credited") == 1

    # The same token and proof again (solve is deterministic): a duplicate, counted as one.
    same = {"token": challenge["token"], "proof": solve(challenge["token"], 4)}
    again = await ws_client.call("action:complete", same)
    assert again["ok"] and again["duplicate"] is True, again
    after_duplicate = await scrape(http, app_url)
    assert value(after_duplicate, "scoreboard_actions_total", outcome="duplicate") == 1
    assert value(after_duplicate, "scoreboard_actions_total", outcome="credited") == 1
    assert value(after_duplicate, "scoreboard_events_total", event="action:complete", outcome="ok") == 2
    assert value(after_duplicate, "scoreboard_event_seconds_count", event="action:complete") == 2

    # A wrong proof, and a "slow" action completed before its min_ms: refused, by reason.
    started = await ws_client.call("action:start", {"action": "quick"})
    assert started["ok"], started
    token = started["challenge"]["token"]
    refused = await ws_client.call("action:complete", {"token": token, "proof": wrong_proof(token, 4, "no-")})
    assert not refused["ok"] and refused["error"]["code"] == "proof_invalid", refused

    started = await ws_client.call("action:start", {"action": "slow"})
    assert started["ok"], started
    token = started["challenge"]["token"]
    early = await ws_client.call("action:complete", {"token": token, "proof": solve(token, 4)})
    assert not early["ok"] and early["error"]["code"] == "too_fast", early

    refusals = await scrape(http, app_url)
    assert value(refusals, "scoreboard_actions_rejected_total", stage="complete", reason="proof_invalid") == 1
    assert value(refusals, "scoreboard_actions_rejected_total", stage="complete", reason="too_fast") == 1
    assert value(refusals, "scoreboard_actions_total", outcome="proof_invalid") == 1
    assert value(refusals, "scoreboard_actions_total", outcome="too_fast") == 1
    assert value(refusals, "scoreboard_actions_total", outcome="credited") == 1
    assert value(refusals, "scoreboard_events_total", event="action:complete", outcome="ok") == 2
    assert value(refusals, "scoreboard_events_total", event="action:complete", outcome="proof_invalid") == 1
    assert value(refusals, "scoreboard_events_total", event="action:complete", outcome="too_fast") == 1
    # Every completion is timed, refused or not.
    assert value(refusals, "scoreboard_event_seconds_count", event="action:complete") == 4

    # The flusher (200 ms in tests): this instance takes the lease, flushes the credit, emits deltas.
    async def flushed() -> Samples:
        samples = await scrape(http, app_url)
        assert value(samples, "scoreboard_flush_lease_held") == 1
        flushes = value(samples, "scoreboard_flush_seconds_count")
        assert flushes is not None and flushes >= 1
        deltas = value(samples, "scoreboard_deltas_total")
        assert deltas is not None and deltas >= 1
        assert value(samples, "scoreboard_queue_depth") == 0  # read at the tick after the flush
        return samples

    samples = await eventually(flushed)
    flushes = value(samples, "scoreboard_flush_seconds_count")
    assert value(samples, "scoreboard_flush_seconds_bucket", le="+Inf") == flushes
    assert value(samples, "scoreboard_queue_backlog") == 0
    assert value(samples, "scoreboard_draining") == 0


# --- the per-connection event limit --------------------------------------------------------


async def test_flooding_connection_is_counted_as_limited_and_flood(
        start_app, settings: Settings, http: aiohttp.ClientSession) -> None:
    running = await start_app(settings, socket_events_per_s=5, socket_event_burst=5)
    client = await open_client(running.url)
    try:
        query = {"board": "global", "period": "all"}
        # The burst goes through, answered; then a flood at once. (Sent together, the burst's
        # reads could lose their answers to the flood's disconnect, which comes as soon as the
        # sixth refusal is counted, before Redis answered them.)
        burst = await asyncio.gather(*(client.sio.call("leaderboard:get", query, timeout=5) for _ in range(5)))
        assert all(r["ok"] for r in burst), burst
        replies = await asyncio.gather(
            *(client.sio.call("leaderboard:get", query, timeout=2) for _ in range(35)),
            return_exceptions=True,
        )
        answered = [*burst, *(r for r in replies if isinstance(r, dict))]
        assert any(not r["ok"] and r["error"]["code"] == "rate_limited" for r in answered), replies

        async def disconnected() -> None:
            assert not client.sio.connected

        await eventually(disconnected)
    finally:
        if client.sio.connected:
            await client.sio.disconnect()

    samples = await scrape(http, running.url)
    limited = value(samples, "scoreboard_limited_total", limit="events")
    assert limited is not None and limited >= 1, samples
    assert value(samples, "scoreboard_limited_total", limit="flood") == 1, samples
    ok = value(samples, "scoreboard_events_total", event="leaderboard:get", outcome="ok")
    assert ok is not None and ok >= 1, samples  # the burst went through
    refused_acks = sum(1 for r in answered if not r["ok"])
    assert refused_acks <= limited + 1, (refused_acks, limited)  # every refusal answered was counted


# --- structured logs -----------------------------------------------------------------------


class LoggedInstance(Instance):
    """tests.processes' Instance (`python -m app`, same environment), with stderr kept in a file."""

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        super().__init__(settings, port=None, log_path=log_path, **env)  # named: env cannot fill them
        self.log_file = log_path

    def lines(self) -> list[str]:
        return [line for line in self.log_file.read_text("utf-8").splitlines() if line.strip()]


async def test_logs_are_json_lines_with_ids_and_no_secrets(
        settings: Settings, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    api_key = f"ops-key-{uuid.uuid4().hex}"
    instance = LoggedInstance(settings, tmp_path / "instance.stderr", LOG_LEVEL="DEBUG", API_KEY=api_key)
    secrets = {"SECRET_KEY": str(settings.secret_key), "API_KEY": api_key}
    mark = uuid.uuid4().hex[:8]
    try:
        await instance.ready()
        session = await create_session(http, instance.url)
        player_id = session["player"]["player_id"]
        secrets["session token"] = session["token"]
        client = await open_client(instance.url, session["token"])
        try:
            # Credited, then the same token and proof again (a duplicate).
            started = await client.call("action:start", {"action": "quick"})
            assert started["ok"], started
            credited_id, token = started["challenge"]["action_id"], started["challenge"]["token"]
            proof = marked_proof(token, 4, f"proof-{mark}-")
            secrets |= {"challenge token (credited)": token, "proof": proof}
            ack = await client.call("action:complete", {"token": token, "proof": proof})
            assert ack["ok"] and ack["duplicate"] is False, ack
            again = await client.call("action:complete", {"token": token, "proof": proof})
            assert again["ok"] and again["duplicate"] is True, again

            # A wrong proof.
            started = await client.call("action:start", {"action": "quick"})
            assert started["ok"], started
            refused_id, token = started["challenge"]["action_id"], started["challenge"]["token"]
            bad = wrong_proof(token, 4, f"wrong-{mark}-")
            secrets |= {"challenge token (refused)": token, "wrong proof": bad}
            refused = await client.call("action:complete", {"token": token, "proof": bad})
            assert refused["error"]["code"] == "proof_invalid", refused

            # A tampered token, and starts past the per-minute limit ("limited": 2 a minute).
            tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            secrets["tampered token"] = tampered
            invalid = await client.call("action:complete", {"token": tampered, "proof": bad})
            assert invalid["error"]["code"] == "token_invalid", invalid
            codes = []
            for _ in range(3):
                reply = await client.call("action:start", {"action": "limited"})
                codes.append("ok" if reply["ok"] else reply["error"]["code"])
                if reply["ok"]:
                    secrets[f"challenge token (limited {len(codes)})"] = reply["challenge"]["token"]
            assert codes == ["ok", "ok", "rate_limited"], codes
        finally:
            await client.sio.disconnect()

        # The operator call, with the API key.
        async with http.put(f"{instance.url}/api/v1/players/{player_id}/suspension", json={"suspended": True},
                            headers={"Authorization": f"Bearer {api_key}"}) as resp:
            assert resp.status == 200, await resp.text()
    finally:
        instance.stop()

    raw = instance.log_file.read_text("utf-8")
    lines = instance.lines()
    assert lines, "the instance logged nothing at DEBUG"

    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a stderr line is not one JSON object: {line!r}")
        assert isinstance(entry, dict), line
        for key in ("ts", "level", "logger", "msg"):
            assert key in entry, f"{key!r} missing from {line!r}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"]), line
        assert entry["level"] in {"debug", "info", "warning", "error", "critical"}, line
        entries.append(entry)

    credited = [e for e in entries if e["msg"] == "action credited"]
    assert len(credited) == 1, credited
    assert credited[0]["player_id"] == player_id
    assert credited[0]["action_id"] == credited_id
    assert credited[0]["points"] == 10 and credited[0]["duplicate"] is False
    assert credited[0]["level"] == "info"

    refusals = [e for e in entries if e["msg"] == "action refused: proof_invalid"]
    assert len(refusals) == 1, refusals
    assert refusals[0]["player_id"] == player_id
    assert refusals[0]["action_id"] == refused_id
    assert refusals[0]["code"] == "proof_invalid"

    suspension = [e for e in entries if e.get("player_id") == player_id and "suspension" in e["msg"]]
    assert suspension, "the operator's suspension left no line with the player id"

    for what, secret in secrets.items():
        assert secret not in raw, f"the log holds the {what}"
