"""`atom-os worker`: run workflow steps from the PostgreSQL job queue (scale-out; see docs/scale-out.md)."""

from __future__ import annotations

import asyncio

import typer

from atom.cli.common import fail, load_settings
from atom.errors import ConfigurationError


def worker(
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        max=1000,
        help="Steps this process runs at once (default: ATOM_WORKER_CONCURRENCY).",
    ),
    scheduler: bool | None = typer.Option(
        None,
        "--scheduler/--no-scheduler",
        help="Also run the cron/wait/recovery scheduler (safe in every process) "
        "(default: ATOM_WORKFLOW_SCHEDULER_ENABLED).",
    ),
    poll_interval: float = typer.Option(
        0.5,
        "--poll-interval",
        min=0.05,
        max=60.0,
        help="Seconds between looks at an idle queue for steps whose retry delay has passed "
        "(new steps wake the worker at once).",
    ),
    shutdown_grace: float = typer.Option(
        30.0,
        "--shutdown-grace",
        min=0.0,
        max=3600.0,
        help="On SIGTERM, seconds running steps may take to finish before they are handed to another worker.",
    ),
    worker_id: str | None = typer.Option(
        None,
        "--worker-id",
        help="Name recorded on the steps this process runs (default: HOST:PID:START, which lets a restart "
        "on this host take over at once the steps this process held when it died).",
    ),
) -> None:
    """Run workflow steps from the job queue (PostgreSQL, ATOM_WORKFLOW_EXECUTOR=queue). SIGTERM stops gracefully."""
    from atom.observability.logging import configure_logging
    from atom.workflows.worker import WorkerOptions, check_worker_settings, quiet_library_logs, run_worker

    if worker_id is not None and not 0 < len(worker_id) <= 100:
        fail("--worker-id must be 1 to 100 characters.")
    settings = load_settings()
    try:
        check_worker_settings(settings)
    except ConfigurationError as exc:
        fail(exc.one_line())
    configure_logging(settings)
    quiet_library_logs(settings)
    options = WorkerOptions(
        concurrency=concurrency or settings.worker_concurrency,
        scheduler=settings.workflow_scheduler_enabled if scheduler is None else scheduler,
        poll_interval_s=poll_interval,
        shutdown_grace_s=shutdown_grace,
        worker_id=worker_id,
    )
    from atom.registries import ensure_registries

    ensure_registries()  # the same catalogue, tools, actions and executors as `atom-os serve`
    try:
        asyncio.run(run_worker(settings, options))
    except ConfigurationError as exc:
        fail(exc.one_line())
