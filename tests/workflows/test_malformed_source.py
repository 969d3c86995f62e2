"""Text that is not a definition at all is a quick 422 naming the problem, on validate, create and update
(and the CLI): not YAML/JSON, not a mapping, YAML aliases (loops, billion laughs), nesting too deep,
too many values. A definition that parses but has problems still answers validate with `valid: false`."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.workflows.definition import MalformedDefinition, parse
from atom.workflows.runner import StepRunner
from atom.workflows.source import MAX_DEPTH, MAX_NODES
from tests.conftest import MakeUser
from tests.support.agents import make_agent

# 256 bytes that expand to 10^7 scalars when the aliases are followed
LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
)

MALFORMED = {
    "a number": ("0", "document", "must be a mapping"),
    "a string": ("workflow", "document", "must be a mapping"),
    "a list": ("[1, 2]", "document", "must be a mapping"),
    "empty": ("# nothing\n", "document", "must be a mapping"),
    "broken flow": ("{not: valid: yaml: [", "syntax", "invalid JSON"),
    "broken yaml": ("name: x\n  steps: [\n", "syntax", "invalid YAML"),
    "alias loop": ("a: &a [*a]", "alias", "aliases are not allowed"),
    "billion laughs": (LAUGHS, "alias", "aliases are not allowed"),
    "deep yaml": ("a: " + "[" * 500 + "]" * 500, "depth", f"more than {MAX_DEPTH} levels"),
    "deep json": ('{"a": ' + "[" * 500 + "]" * 500 + "}", "depth", f"more than {MAX_DEPTH} levels"),
    "very deep json": ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "depth", f"more than {MAX_DEPTH} levels"),
    "too many values": ("name: x\nsteps: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]", "size", "values"),
    "huge integer": ("name: x\nsteps: " + "9" * 5000, "syntax", "integer"),
    "bad date": ("name: x\nwhen: 2026-13-45\n", "syntax", "month"),
    "two documents": ("name: a\n---\nname: b\n", "syntax", "invalid YAML"),
}
# fmt: off
GOOD = "name: tidy\nagent: src-bot\nsteps:\n  - id: one\n    action: noop\n"
WITH_PROBLEMS = "name: tidy\nagent: src-bot\nsteps:\n  - id: one\n    action: noop\n    needs: [nothing]\n"
# fmt: on
CASES = pytest.mark.parametrize("case", sorted(MALFORMED))


def test_aliases_are_refused_before_they_expand() -> None:
    with pytest.raises(MalformedDefinition) as caught:
        parse(LAUGHS)
    assert caught.value.problems == [
        {"field": "", "line": 2, "message": caught.value.problems[0]["message"], "type": "alias"}
    ]


@CASES
def test_the_parser_names_the_problem(case: str) -> None:
    source, kind, words = MALFORMED[case]
    with pytest.raises(MalformedDefinition) as caught:
        parse(source)
    problem = caught.value.problems[0]
    assert problem["type"] == kind and words in problem["message"], problem


@CASES
async def test_validate_create_and_update_answer_422(
    case: str,
    settings: Settings,
    db: Database,
    engine: StepRunner,
    client: httpx.AsyncClient,
    make_user: MakeUser,
) -> None:
    source, kind, words = MALFORMED[case]
    await make_agent(db, settings, MaturityLevel.STUDENT, name="src-bot")
    h = (await make_user(Role.OPERATOR)).headers
    created = await client.post("/api/workflows", json={"source": GOOD}, headers=h)
    assert created.status_code == 201, created.text
    routes = (("POST", "/api/workflows/validate"), ("POST", "/api/workflows"), ("PUT", "/api/workflows/tidy"))
    for method, path in routes:
        answer = await client.request(method, path, json={"source": source}, headers=h)
        assert answer.status_code == 422, (method, path, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "MALFORMED_WORKFLOW"
        assert words in error["message"]
        assert error["details"]["errors"][0]["type"] == kind
    versions = (await client.get("/api/workflows/tidy", headers=h)).json()
    assert versions["current_version"] == 1  # nothing was stored


async def test_a_definition_with_problems_still_validates_to_valid_false(
    settings: Settings,
    db: Database,
    engine: StepRunner,
    client: httpx.AsyncClient,
    make_user: MakeUser,
) -> None:
    await make_agent(db, settings, MaturityLevel.STUDENT, name="src-bot")
    h = (await make_user(Role.OPERATOR)).headers
    answer = await client.post("/api/workflows/validate", json={"source": WITH_PROBLEMS}, headers=h)
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False
    assert body["problems"][0]["message"] == "unknown step 'nothing' in needs"


@pytest.mark.parametrize("case", ["alias loop", "billion laughs", "deep yaml", "a list"])
def test_the_cli_reports_the_problem_and_exits_1(case: str, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "wf.yaml"
    path.write_text(MALFORMED[case][0])
    for offline in (["--offline"], []):  # local checks run first: no server is needed to refuse it
        result = CliRunner().invoke(cli, ["workflows", "validate", str(path), *offline, "--url", "http://127.0.0.1:9"])
        assert result.exit_code == 1, result.output
        assert MALFORMED[case][2] in result.output
