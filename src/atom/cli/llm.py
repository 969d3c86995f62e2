"""`atom-os llm ...`: LLM providers (bring your own key), their health, usage and agent budgets.

Every command talks to the running server's API (`--url`, default ATOM_HOST:ATOM_PORT) with an Atom
API key (`--key` or ATOM_API_KEY): admin to change providers and budgets, viewer to read. A
provider's own API key is never a command-line value (it would show in `ps` and shell history): it
is prompted for (hidden), read from standard input (`--api-key-stdin`) or from an environment
variable you name (`--api-key-env OPENAI_API_KEY`).
"""

from __future__ import annotations

import os
import sys
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from atom.cli.common import console, fail
from atom.cli.workflows import KeyOption, UrlOption, api

app = typer.Typer(
    help="LLM providers: add, list, show, test, remove; token usage and cost; per-agent budgets.",
    no_args_is_help=True,
)


def _provider_key(stdin: bool, env: str | None, no_key: bool) -> str | None:
    if no_key:
        return None
    if env:
        value = os.environ.get(env, "")
        if not value:
            fail(f"environment variable {env} is empty or not set.")
        return value
    if stdin:
        value = sys.stdin.readline().strip()
        if not value:
            fail("no API key on standard input.")
        return value
    if sys.stdin.isatty():
        value = typer.prompt("Provider API key (empty for none)", default="", hide_input=True, show_default=False)
        return value.strip() or None
    fail("give the provider's API key with --api-key-stdin or --api-key-env NAME, or pass --no-api-key.")


def _health(value: Any) -> str:
    return {True: "[green]healthy[/]", False: "[red]unhealthy[/]"}.get(value, "[dim]untested[/]")


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Provider name: lower-case letters, digits, `_`, `-`.")],
    kind: Annotated[str, typer.Option("--kind", help="openai (any OpenAI-compatible server) or anthropic.")],
    model: Annotated[list[str], typer.Option("--model", "-m", help="A model it serves (repeat for more).")],
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API base URL (OpenAI-compatible: up to /v1). Default: vendor's.")
    ] = None,
    priority: Annotated[int, typer.Option(help="Fallback order: lower first.")] = 100,
    disabled: Annotated[bool, typer.Option("--disabled", help="Store it but do not route to it.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing provider of this name.")] = False,
    api_key_stdin: Annotated[bool, typer.Option("--api-key-stdin", help="Read the provider key from stdin.")] = False,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Read the provider key from this environment variable.")
    ] = None,
    no_api_key: Annotated[bool, typer.Option("--no-api-key", help="No key (a local server without auth).")] = False,
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Add (or with --replace, replace) a provider; its key goes to the secrets store."""
    secret = _provider_key(api_key_stdin, api_key_env, no_api_key)
    body: dict[str, Any] = {"kind": kind, "base_url": base_url, "models": model, "priority": priority}
    body["enabled"] = not disabled
    if secret is not None:
        body["api_key"] = secret
    with api(url, key) as client:
        if replace:
            provider = client.request("PUT", f"/api/llm/providers/{name}", json=body)
        else:
            provider = client.post("/api/llm/providers", json={"name": name, **body})
    console.print(
        f"Provider [bold]{provider['name']}[/] ({provider['kind']}, {provider['base_url']}) serves "
        f"{', '.join(provider['models'])}; key {'stored' if provider['has_key'] else 'none'}. "
        f"Check it with `atom-os llm test {provider['name']}`."
    )


@app.command("list")
def list_providers(key: KeyOption = None, url: UrlOption = None) -> None:
    """List providers in fallback order with their last health check."""
    with api(url, key) as client:
        items = client.get("/api/llm/providers")["items"]
    if not items:
        console.print(
            "No LLM provider configured. Add one with `atom-os llm add NAME --kind openai --base-url URL -m MODEL`."
        )
        return
    table = Table("name", "kind", "base url", "models", "priority", "enabled", "key", "health", "last error")
    for p in items:
        table.add_row(
            p["name"],
            p["kind"],
            p["base_url"],
            ", ".join(p["models"]),
            str(p["priority"]),
            "yes" if p["enabled"] else "no",
            "stored" if p["has_key"] else "none",
            _health(p["healthy"]),
            p["last_error"] or "",
        )
    console.print(table)


@app.command()
def show(name: str, key: KeyOption = None, url: UrlOption = None) -> None:
    """Show one provider (never its key)."""
    with api(url, key) as client:
        p = client.get(f"/api/llm/providers/{name}")
    console.print(f"[bold]{p['name']}[/] {p['kind']} {p['base_url']}")
    console.print(f"models: {', '.join(p['models'])}; priority {p['priority']}; enabled {p['enabled']}")
    console.print(f"key: {'stored' if p['has_key'] else 'none'}; health: {_health(p['healthy'])}")
    if p["last_error"]:
        console.print(f"last error: {p['last_error']}", highlight=False)


@app.command()
def test(
    name: Annotated[str | None, typer.Argument(help="Provider to test (default: all).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model to test (default: its first).")] = None,
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Send one tiny chat turn to each provider; exit 1 if any is unhealthy."""
    with api(url, key) as client:
        names = [name] if name else [p["name"] for p in client.get("/api/llm/providers")["items"]]
        if not names:
            fail("No LLM provider configured. Add one with `atom-os llm add`.")
        results = [client.post(f"/api/llm/providers/{n}/test", json={"model": model} if model else None) for n in names]
    unhealthy = 0
    for r in results:
        if r["healthy"]:
            console.print(f"{_health(True)} {r['name']} ({r['model']}) in {r['latency_ms']} ms: {r['reply']!r}")
        else:
            unhealthy += 1
            console.print(f"{_health(False)} {r['name']} ({r['model']}): {r['error']}", highlight=False)
    raise typer.Exit(1 if unhealthy else 0)


@app.command()
def remove(name: str, key: KeyOption = None, url: UrlOption = None) -> None:
    """Remove a provider and its stored key."""
    with api(url, key) as client:
        client.request("DELETE", f"/api/llm/providers/{name}")
    console.print(f"Removed provider {name} and its key.")


def _money(value: Any) -> str:
    return f"${Decimal(str(value)):.4f}"


@app.command()
def usage(
    by: Annotated[str, typer.Option("--by", help="Comma list of agent, provider, day, model.")] = "agent,provider,day",
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (UTC).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent id.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Tokens and cost per agent, provider and day (or any grouping of agent, provider, day, model)."""
    params: dict[str, str] = {"group_by": by}
    for field, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                params[field] = date.fromisoformat(value).isoformat()
            except ValueError:
                fail(f"--{field} must be a date YYYY-MM-DD, got {value!r}.")
    if agent:
        params["agent_id"] = agent
    if provider:
        params["provider"] = provider
    with api(url, key) as client:
        report = client.get("/api/llm/usage", params=params)
    groups = report["group_by"]
    field_of = {"agent": "agent_id", "provider": "provider", "day": "day", "model": "model"}
    table = Table(*groups, "calls", "failed", "tokens in", "tokens out", "cost", "unpriced")
    for row in report["rows"]:
        table.add_row(*_usage_cells(row, groups, field_of))
    total = _usage_cells(report["total"], groups, field_of)
    if groups:
        total[0] = "[bold]total[/]"
    table.add_row(*total)
    console.print(table)


def _usage_cells(row: dict[str, Any], groups: list[str], field_of: dict[str, str]) -> list[str]:
    keys = [str(row.get(field_of[g]) or "-") for g in groups]
    return [
        *keys,
        str(row["calls"]),
        str(row["failed_calls"]),
        str(row["input_tokens"]),
        str(row["output_tokens"]),
        _money(row["cost_usd"]),
        str(row["unpriced_calls"]),
    ]


@app.command()
def budget(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    daily: Annotated[float | None, typer.Option("--daily", min=0, help="Daily limit in USD.")] = None,
    monthly: Annotated[float | None, typer.Option("--monthly", min=0, help="Monthly limit in USD.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the agent's own budget.")] = False,
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Show an agent's LLM budget and spend; with --daily/--monthly set it, with --clear remove it."""
    with api(url, key) as client:
        if clear:
            client.request("DELETE", f"/api/llm/budgets/{agent}")
        elif daily is not None or monthly is not None:
            body = {
                "daily_usd": None if daily is None else str(daily),
                "monthly_usd": None if monthly is None else str(monthly),
            }
            client.request("PUT", f"/api/llm/budgets/{agent}", json=body)
        state = client.get(f"/api/llm/budgets/{agent}")

    def limit(value: Any) -> str:
        return "unlimited" if value is None else _money(value)

    console.print(
        f"agent {agent}: daily {limit(state['daily_usd'])} (spent today {_money(state['spent_today_usd'])}), "
        f"monthly {limit(state['monthly_usd'])} (spent this month {_money(state['spent_month_usd'])}); "
        f"budget from {state['source']}"
    )
