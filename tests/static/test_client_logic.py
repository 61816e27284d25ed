"""static/client.js and static/pow-worker.js under node's test runner, without a browser: the
leaderboard rules of PROTOCOL.md section 6 (replace by rank, drop past TOP_N, reset, ignore old seq,
re-watch on a gap and after a reconnect), error texts, and the proof of work; (v1.1) countdowns,
day and ISO-week keys and stepping through ended boards.
The tests themselves are tests/static/client.test.mjs."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "client.test.mjs"


async def test_client_logic_under_node():
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not on PATH: run `make setup` (installs nodejs and npm)")
    proc = await asyncio.create_subprocess_exec(
        node, "--test", "--test-reporter=spec", str(SCRIPT), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    report = out.decode()
    assert proc.returncode == 0, report
    assert "ℹ fail 0" in report and "ℹ pass 0" not in report, report
