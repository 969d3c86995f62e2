"""Prometheus metrics. Defined once at module level, in the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_REQUESTS = Counter("atom_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "atom_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("atom_http_requests_in_flight", "HTTP requests being handled")
DB_QUERY_SECONDS = Histogram(
    "atom_db_query_duration_seconds",
    "Database statement duration",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
AUDIT_EVENTS = Counter("atom_audit_events_total", "Audit records written", ["action", "decision"])
GOVERNANCE_CACHE = Counter("atom_governance_cache_total", "Governance decision cache lookups", ["result"])
GOVERNANCE_DECISIONS = Counter("atom_governance_decisions_total", "Governance decisions", ["outcome"])
