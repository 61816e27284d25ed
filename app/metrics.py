"""Prometheus metrics, in a registry owned by one app (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "scoreboard_connections", "Open Socket.IO connections", ["role"], registry=self.registry
        )
        self.events = Counter(
            "scoreboard_events_total", "Socket.IO events handled, by event and outcome code",
            ["event", "outcome"], registry=self.registry,
        )
        self.actions = Counter(
            "scoreboard_actions_total", "action:complete outcomes (credited, duplicate, or the error code)",
            ["outcome"], registry=self.registry,
        )
        self.latency = Histogram(
            "scoreboard_event_seconds", "Time to answer a Socket.IO event", ["event"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

        self.flush_seconds = Histogram(
            "scoreboard_flush_seconds", "Time of one leaderboard flush (apply, diff, emit)", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.deltas = Counter(
            "scoreboard_deltas_total", "leaderboard:delta messages emitted by this instance", registry=self.registry
        )

    def observe_flush(self, seconds: float, deltas: int) -> None:
        self.flush_seconds.observe(seconds)
        self.deltas.inc(deltas)

    def render(self) -> bytes:
        return generate_latest(self.registry)
