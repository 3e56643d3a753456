"""Prometheus metrics of this process (prometheus-client: the standard exposition)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "floorbell_http_requests_total", "HTTP requests served", ["method", "status"]
)
SSE_CONNECTIONS = Gauge("floorbell_sse_connections", "Open SSE connections on this instance")
SSE_FRAMES = Counter("floorbell_sse_frames_total", "Event frames written to SSE clients")
SSE_SLOW_DISCONNECTS = Counter(
    "floorbell_sse_slow_disconnects_total", "SSE clients cut off for reading too slowly"
)
EVENTS_RELAYED = Counter("floorbell_events_relayed_total", "Outbox events appended to Redis")
NOTIFICATIONS_ROUTED = Counter(
    "floorbell_notifications_total", "Notifications created by the router", ["type"]
)
PUSHES = Counter("floorbell_push_total", "Web Push attempts", ["status"])
PUSH_SECONDS = Histogram("floorbell_push_seconds", "Time to hand one push to a push service")
LOOP_LAST_SUCCESS = Gauge(
    "floorbell_loop_last_success_seconds",
    "Unix time of the last good pass of each background loop of this process",
    ["loop"],
)
DEAD_LETTERS = Counter(
    "floorbell_dead_letters_total",
    "Stream entries set aside after failing again and again",
    ["group", "type"],
)
ENTRY_FAILURES = Counter(
    "floorbell_entry_failures_total",
    "Stream entries whose handling failed (each failure counts)",
    ["group"],
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
