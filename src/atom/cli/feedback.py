"""`atom-os feedback ...` and `atom-os abtests ...`: what people said about agents, and A/B results.

Giving and reviewing feedback is a person's act, so it happens in the API (and the dashboard) under
that person's key; these commands read.
"""

from __future__ import annotations

import typer
from rich.table import Table

from atom.agents import service as agents_service
from atom.cli.common import console, id_table, load_settings, run, session_scope
from atom.feedback import abtests
from atom.feedback import service as feedback_service
from atom.feedback.models import FeedbackStatus
from atom.feedback.schemas import ABTestResults, AgentFeedbackStats

app = typer.Typer(help="Feedback on agents: list it, see an agent's figures.", no_args_is_help=True)
abtests_app = typer.Typer(help="A/B tests of agent variants: list them, see their results.", no_args_is_help=True)


@app.command("list")
def list_feedback(
    agent: str | None = typer.Option(None, help="Agent id or name."),
    pending: bool = typer.Option(False, help="Only corrections waiting for review."),
    limit: int = typer.Option(50, min=1, max=200),
) -> None:
    """List feedback, newest first."""
    settings = load_settings()

    async def body() -> list[tuple[str, str, str, str, str, str]]:
        async with session_scope(settings) as session:
            agent_id = (await agents_service.resolve_ref(session=session, ref=agent)).id if agent else None
            rows, _ = await feedback_service.list_feedback(
                session=session,
                limit=limit,
                cursor=None,
                agent_id=agent_id,
                status=FeedbackStatus.PENDING if pending else None,
            )
            names: dict[str, str] = {}
            out = []
            for row in rows:
                if row.agent_id not in names:
                    names[row.agent_id] = (await agents_service.get_agent(session=session, agent_id=row.agent_id)).name
                value = row.kind
                if row.thumbs is not None:
                    value = "thumbs up" if row.thumbs > 0 else "thumbs down"
                elif row.rating is not None:
                    value = f"rating {row.rating}"
                out.append(
                    (row.id, names[row.agent_id], value, row.status, f"{row.confidence_delta:+.3f}", row.target_type)
                )
            return out

    table = id_table("id", "agent", "feedback", "status", "confidence", "on")
    for row in run(body):
        table.add_row(*row)
    console.print(table)


@app.command()
def stats(agent: str, days: int = typer.Option(30, min=1, max=366)) -> None:
    """An agent's feedback figures over the last DAYS: counts, mean rating, correction rate, trend."""
    settings = load_settings()

    async def body() -> AgentFeedbackStats:
        async with session_scope(settings) as session:
            agent_id = (await agents_service.resolve_ref(session=session, ref=agent)).id
            return await feedback_service.agent_stats(session=session, agent_id=agent_id, days=days)

    result = run(body)
    mean = "-" if result.mean_rating is None else f"{result.mean_rating:.2f}"
    rate = "-" if result.correction_rate is None else f"{result.correction_rate:.1%}"
    console.print(
        f"{result.count} feedback in {days} days: {result.thumbs_up} up, {result.thumbs_down} down, "
        f"mean rating {mean}, correction rate {rate}, {result.pending_corrections} corrections pending review"
    )
    table = Table("day", "feedback", "mean rating", "corrections")
    for day in result.trend:
        table.add_row(
            day.day, str(day.count), "-" if day.mean_rating is None else f"{day.mean_rating:.2f}", str(day.corrections)
        )
    console.print(table)


@abtests_app.command("list")
def list_tests(limit: int = typer.Option(50, min=1, max=200)) -> None:
    """List A/B tests, newest first."""
    settings = load_settings()

    async def body() -> list[tuple[str, str, str, str, str]]:
        async with session_scope(settings) as session:
            rows, _ = await abtests.list_tests(session=session, limit=limit, cursor=None)
            return [(r.id, r.name, r.metric, f"{r.traffic_share:.0%} to B", r.status) for r in rows]

    table = id_table("id", "name", "metric", "traffic", "status")
    for row in run(body):
        table.add_row(*row)
    console.print(table)


@abtests_app.command()
def results(test: str) -> None:
    """A test's figures per variant, the statistical test, p-value, 95% interval and a suggestion."""
    settings = load_settings()

    async def body() -> ABTestResults:
        async with session_scope(settings) as session:
            return await abtests.results(session=session, test_ref=test)

    result = run(body)
    for variant in (result.a, result.b):
        value = "-" if variant.value is None else f"{variant.value:.3f}"
        console.print(
            f"variant {variant.variant}: {variant.runs} runs, {variant.samples} observations, "
            f"{result.test.metric} {value}"
        )
    if result.p_value is not None and result.difference is not None:
        console.print(
            f"{result.test_used}: B - A = {result.difference:+.3f} "
            f"(95% CI {result.ci_low:+.3f} to {result.ci_high:+.3f}), p = {result.p_value:.4f}"
        )
    console.print(result.suggestion)
