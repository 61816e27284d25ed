"""Prometheus metrics, in a registry owned by one app (no process-wide globals).

What each one means for an operator is in the README's "Operating it".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _Sampled:
    """A labelled gauge read from live state at scrape time (label values come and go)."""

    def __init__(self, name: str, doc: str, label: str, sample: Callable[[], dict[str, float]]) -> None:
        self._name, self._doc, self._label, self._sample = name, doc, label, sample

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        for value, count in sorted(self._sample().items()):
            family.add_metric([value], count)
        yield family


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("scoreboard_connections", "Open Socket.IO connections", ["role"], registry=r)
        self.events = Counter(
            "scoreboard_events_total", "Socket.IO events handled, by event and outcome code", ["event", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "scoreboard_event_seconds", "Time to answer a Socket.IO event (action:complete: the completion latency)",
            ["event"], registry=r, buckets=_SECONDS,
        )
        self.actions = Counter(
            "scoreboard_actions_total", "action:complete outcomes (credited, duplicate, or the error code)",
            ["outcome"], registry=r,
        )
        self.rejected = Counter(
            "scoreboard_actions_rejected_total", "Refused action:start and action:complete, by stage and error code",
            ["stage", "reason"], registry=r,
        )
        self.limited = Counter(
            "scoreboard_limited_total",
            "Events, connections, sessions and HTTP reads refused by the abuse limits, by limit", ["limit"], registry=r,
        )
        self.flush_seconds = Histogram(
            "scoreboard_flush_seconds", "Time of one leaderboard flush (apply, diff, emit)", registry=r,
            buckets=_SECONDS[:-1],
        )
        self.deltas = Counter("scoreboard_deltas_total", "leaderboard:delta messages emitted by this instance",
                              registry=r)
        self.deltas_skipped = Counter(
            "scoreboard_deltas_skipped_total",
            "Room messages (leaderboard:delta) not sent to a watcher of this instance: its connection was closing, "
            "or held too much unsent (it sees a seq gap and watches again)", registry=r,
        )
        self.queue_depth = Gauge("scoreboard_queue_depth",
                                 "Standings waiting in the Redis delta queue, read at this instance's last tick",
                                 registry=r)
        self.queue_backlog = Gauge("scoreboard_queue_backlog",
                                   "Standings this instance holds in memory while Redis refuses appends", registry=r)
        self.lease_held = Gauge("scoreboard_flush_lease_held", "1 on the instance that holds the flush lease",
                                registry=r)
        self.reconciled = Counter("scoreboard_credits_reconciled_total",
                                  "Half-done credits this instance's reconciler finished (or found refused)",
                                  ["outcome"], registry=r)
        self.audit_dropped = Counter("scoreboard_audit_dropped_total",
                                     "Audit entries dropped: the writer's queue was full (a flood, or the store away)",
                                     registry=r)
        self.audit_backlog = Gauge("scoreboard_audit_backlog", "Audit entries waiting to be written", registry=r)
        self.draining = Gauge("scoreboard_draining", "1 while this instance drains for shutdown", registry=r)

    def sample_transports(self, sample: Callable[[], dict[str, float]]) -> None:
        self.registry.register(_Sampled(
            "scoreboard_transport_connections", "Open engine.io connections by transport, after upgrades",
            "transport", sample,
        ))

    def observe_flush(self, seconds: float, deltas: int) -> None:
        self.flush_seconds.observe(seconds)
        self.deltas.inc(deltas)

    def render(self) -> bytes:
        return generate_latest(self.registry)
