"""What the fuzz tests share besides fixtures: the operator key of the fuzz server, the
hypothesis budget of a test (FUZZ_SCALE, FUZZ_RANDOM: see conftest.py), and the server process."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, Phase, settings as hsettings

from tests.fuzz.oracle import Registry
from tests.fuzz.wire import request
from tests.processes import Instance

API_KEY = "fuzz-operator-key-0123456789"

SCALE = float(os.environ.get("FUZZ_SCALE", "1") or 1)
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")


def budget(examples: int) -> hsettings:
    return hsettings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=timedelta(seconds=10),  # a hang fails; any real answer comes well within
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much, HealthCheck.data_too_large],
        report_multiple_bugs=True,
        # No explain phase: it replays a failure many times over the network, and adds nothing to
        # the minimal input the shrinker reports.
        phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    )


class Server:
    """One `python -m app` process of the fuzz package (a plain class, for a short repr).
    Its JSON log lines go to `log_path`; the error lines a test caused are added to its report."""

    def __init__(self, instance: Instance, registry: Registry, log_path: Path) -> None:
        self.instance = instance
        self.registry = registry
        self.log_path = log_path
        self._read = 0

    def new_errors(self) -> list[str]:
        """Error lines logged since the last call: logger, message, last line of the traceback."""
        with self.log_path.open("rb") as log:
            log.seek(self._read)
            data = log.read()
        self._read += len(data)
        lines = []
        for raw in data.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                lines.append(raw[:300])  # not a JSON log line: print() or a crash
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                exc = (entry.get("exc") or "").strip().splitlines()
                lines.append(f"{entry.get('logger')}: {entry.get('msg')}" + (f" | {exc[-1]}" if exc else ""))
        return lines

    def __repr__(self) -> str:
        return f"<Server {self.url}>"

    @property
    def url(self) -> str:
        return self.instance.url

    def assert_alive(self) -> None:
        code = self.instance.proc.poll()
        assert code is None, f"the server process exited with {code}"

    async def assert_healthy(self, http: aiohttp.ClientSession) -> None:
        """Section 8: /healthz is 200 while the process runs; /readyz 200 while both stores answer."""
        self.assert_alive()
        reply = await request(http, "GET", f"{self.url}/healthz")
        assert reply.status == 200, f"/healthz: {reply!r}"
