"""Prometheus metrics: request latency by view (a histogram kept by ``RequestMetricsMiddleware``) and,
computed at each scrape, queue depth per Celery queue, jobs by state, images analysed in the last
minute and the age of each worker's newest heartbeat.

With several server processes (gunicorn workers) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder
shared by them: the histogram is then summed over processes (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_LATENCY = Histogram(
    "portal_request_duration_seconds", "Time to answer a request, by view.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WORKER_WINDOW = timedelta(hours=1)  # workers with a heartbeat this recent are reported


class RequestMetricsMiddleware:
    """Time each request and file it under its view name (``unmatched`` for 404s without a route)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unmatched"
        REQUEST_LATENCY.labels(view=view, method=request.method).observe(time.perf_counter() - started)
        return response


def celery_queue_names() -> list[str]:
    """The queues workers take from: the default queue, ``cpu`` and ``gpu`` (and the inference queue)."""
    names = {settings.CELERY_TASK_DEFAULT_QUEUE, "cpu", "gpu", settings.INFERENCE_QUEUE}
    return sorted(n for n in names if n)


def queue_depths() -> dict[str, int] | None:
    """Messages waiting per queue (Redis ``LLEN``); ``None`` for a broker that is not Redis."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return {name: int(client.llen(name)) for name in celery_queue_names()}
    finally:
        client.close()


class PortalCollector:
    """The gauges read at scrape time, across every center (system work)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from portal.centers.rls import system_scope
        from portal.jobs.models import InferenceJob, JobStatus
        from portal.results.models import ResultSet

        depths = queue_depths()
        if depths is not None:
            queue = GaugeMetricFamily("portal_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
            for name, depth in depths.items():
                queue.add_metric([name], depth)
            yield queue
        now = timezone.now()
        with system_scope("metrics scrape"):
            by_state = dict(InferenceJob.objects.order_by().values_list("status").annotate(n=Count("id")))
            analysed = ResultSet.objects.filter(job__isnull=False, completed_at__gte=now - timedelta(minutes=1)).count()
            heartbeats = list(InferenceJob.objects.exclude(worker_id="").filter(heartbeat_at__gte=now - WORKER_WINDOW)
                              .order_by().values("worker_id").annotate(newest=Max("heartbeat_at"))
                              .values_list("worker_id", "newest"))
        jobs = GaugeMetricFamily("portal_jobs", "Inference jobs by state.", labels=["state"])
        for state in JobStatus.values:
            jobs.add_metric([state], by_state.get(state, 0))
        yield jobs
        yield GaugeMetricFamily("portal_images_analysed_last_minute",
                                "Images whose analysis completed in the last 60 seconds.", value=analysed)
        ages = GaugeMetricFamily("portal_worker_heartbeat_age_seconds",
                                 "Seconds since the newest heartbeat of each worker (heartbeats of the last hour).",
                                 labels=["worker"])
        for worker, newest in heartbeats:
            ages.add_metric([worker], (now - newest).total_seconds())
        yield ages


def metrics_text() -> bytes:
    """The exposition text: the request histogram (of every process in multiprocess mode) and the gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
        latency = generate_latest(processes)
    else:
        latency = generate_latest(REGISTRY)
    scrape = CollectorRegistry()
    scrape.register(PortalCollector())
    return latency + generate_latest(scrape)
