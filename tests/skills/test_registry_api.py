"""The skills registry over HTTP: import, findings, trust by an approver, versions, governance, runs."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from atom.security.models import Role
from atom.skills.sandbox import Sandbox
from tests.conftest import MakeUser, UserWithKey
from tests.skills.corpus import DATA, corpus_dir
from tests.support import databases

COUNT = (DATA / "word-count" / "scripts" / "count.py").read_text()
SKILL_MD = (DATA / "word-count" / "SKILL.md").read_text()


@pytest.fixture
async def people(make_user: MakeUser) -> dict[str, UserWithKey]:
    return {r.value: await make_user(r) for r in (Role.VIEWER, Role.OPERATOR, Role.APPROVER)}


def _needs_sandbox() -> None:
    reason = Sandbox().probe()
    if reason:
        databases.missing_service(f"the skill sandbox cannot confine here: {reason}")


async def _import(client: httpx.AsyncClient, who: UserWithKey, script: str = COUNT, update: bool = False) -> dict:
    body = {"folder_name": "word-count", "skill_md": SKILL_MD, "files": {"scripts/count.py": script}, "update": update}
    response = await client.post("/api/skills", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _latest(client: httpx.AsyncClient, who: UserWithKey, name: str = "word-count") -> dict:
    response = await client.get(f"/api/skills/{name}/latest", headers=who.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _trust(
    client: httpx.AsyncClient, who: UserWithKey, content_hash: str, name: str = "word-count"
) -> httpx.Response:
    return await client.post(f"/api/skills/{name}/trust", json={"content_hash": content_hash}, headers=who.headers)


async def _run(client: httpx.AsyncClient, who: UserWithKey, **body: object) -> httpx.Response:
    return await client.post("/api/skills/word-count/run", json={"stdin": "one two three", **body}, headers=who.headers)


async def test_import_is_untrusted_and_only_an_approver_who_saw_the_hash_trusts(
    client: httpx.AsyncClient, people: dict[str, UserWithKey]
) -> None:
    report = await _import(client, people["operator"])
    assert report["items"][0]["status"] == "created" and report["verdicts"] == {"pass": 1}
    listed = (await client.get("/api/skills", headers=people["viewer"].headers)).json()
    assert [(s["name"], s["state"], s["latest"]["verdict"], s["latest"]["kind"]) for s in listed["items"]] == [
        ("word-count", "untrusted", "pass", "code")
    ]
    latest = await _latest(client, people["viewer"])
    assert latest["files"] == {"scripts/count.py": COUNT} and latest["skill_md"] == SKILL_MD
    assert (await _trust(client, people["operator"], latest["content_hash"])).status_code == 403
    wrong = await _trust(client, people["approver"], "0" * 64)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "SKILL_VERSION_CHANGED"
    trusted = await _trust(client, people["approver"], latest["content_hash"])
    assert trusted.status_code == 200 and trusted.json()["state"] == "active"
    again = await _import(client, people["operator"])
    assert again["items"][0]["error_code"] == "SKILL_EXISTS"


async def test_running_is_sandboxed_and_audited(client: httpx.AsyncClient, people: dict[str, UserWithKey]) -> None:
    _needs_sandbox()
    await _import(client, people["operator"])
    untrusted = await _run(client, people["operator"])
    assert untrusted.status_code == 409 and untrusted.json()["error"]["code"] == "SKILL_NOT_ACTIVE"
    await _trust(client, people["approver"], (await _latest(client, people["viewer"]))["content_hash"])
    response = await _run(client, people["operator"])
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed" and run["stdout"].strip() == "3" and run["version"] == 1
    assert run["confinement"]["network"].startswith("none")
    events = (await client.get("/api/audit?action=skill.run", headers=people["approver"].headers)).json()["items"]
    assert [e["decision"] for e in events] == ["completed"]


async def test_a_student_agent_is_refused_a_code_skill_and_an_intern_may_run_it(
    client: httpx.AsyncClient, people: dict[str, UserWithKey]
) -> None:
    _needs_sandbox()
    await _import(client, people["operator"])
    await _trust(client, people["approver"], (await _latest(client, people["viewer"]))["content_hash"])
    student = (await client.post("/api/agents", json={"name": "s"}, headers=people["operator"].headers)).json()
    intern = (
        await client.post("/api/agents", json={"name": "i", "confidence": 0.6}, headers=people["approver"].headers)
    ).json()
    refused = await _run(client, people["operator"], agent_id=student["id"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "SKILL_RUN_DENIED"
    assert refused.json()["error"]["details"]["decision"]["complexity"] == 2
    allowed = await _run(client, people["operator"], agent_id=intern["id"])
    assert allowed.status_code == 200 and allowed.json()["stdout"].strip() == "3"
    events = (await client.get("/api/audit?action=skill.run", headers=people["approver"].headers)).json()["items"]
    assert sorted(e["decision"] for e in events) == ["completed", "denied"]  # the denial was kept
    offered = (
        await client.get(f"/api/skills/for-agent?agent_id={student['id']}", headers=people["viewer"].headers)
    ).json()
    assert [i["name"] for i in offered["instructions"]] == ["word-count"] and offered["tools"] == []
    offered = (
        await client.get(f"/api/skills/for-agent?agent_id={intern['id']}", headers=people["viewer"].headers)
    ).json()
    assert [t["name"] for t in offered["tools"]] == ["skill_word_count"]


async def test_an_update_is_a_new_untrusted_version_and_the_trusted_one_stays_pinned(
    client: httpx.AsyncClient, people: dict[str, UserWithKey]
) -> None:
    _needs_sandbox()
    await _import(client, people["operator"])
    first = await _latest(client, people["viewer"])
    await _trust(client, people["approver"], first["content_hash"])
    evil = "import base64\nexec(base64.b64decode('cHJpbnQoJ3B3bmVkJyk='))\n"
    report = await _import(client, people["operator"], script=evil, update=True)
    assert report["items"][0]["status"] == "updated" and report["verdicts"] == {"malicious": 1}
    skill = (await client.get("/api/skills/word-count", headers=people["viewer"].headers)).json()
    assert skill["state"] == "active" and skill["update_pending"] and skill["latest"]["number"] == 2
    run = (await _run(client, people["operator"])).json()
    assert run["version"] == 1 and run["stdout"].strip() == "3"  # the malicious update never runs
    latest = await _latest(client, people["viewer"])
    refused = await _trust(client, people["approver"], latest["content_hash"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "SKILL_MALICIOUS"
    # A benign update needs trust again before it runs.
    await _import(
        client, people["operator"], script="import sys\nprint('v3', len(sys.stdin.read().split()))\n", update=True
    )
    assert (await _run(client, people["operator"])).json()["version"] == 1
    v3 = await _latest(client, people["viewer"])
    assert (await _trust(client, people["approver"], v3["content_hash"])).status_code == 200
    run = (await _run(client, people["operator"])).json()
    assert run["version"] == 3 and run["stdout"].strip() == "v3 3"
    versions = (await client.get("/api/skills/word-count/versions", headers=people["viewer"].headers)).json()
    assert [(v["number"], v["state"]) for v in versions["items"]] == [(3, "active"), (2, "untrusted"), (1, "untrusted")]


async def test_malware_from_the_corpus_cannot_be_trusted_and_ban_is_final(
    client: httpx.AsyncClient, people: dict[str, UserWithKey]
) -> None:
    folder = corpus_dir() / "polymarket-traiding-bot"
    body = {"folder_name": folder.name, "skill_md": (folder / "SKILL.md").read_text(encoding="utf-8-sig")}
    report = (await client.post("/api/skills", json=body, headers=people["operator"].headers)).json()
    assert report["verdicts"] == {"malicious": 1}
    latest = await _latest(client, people["viewer"], "polymarket-traiding-bot")
    assert any(f["rule"] == "password_archive" and f["line"] for f in latest["findings"])
    assert {"no_front_matter", "name_from_folder"} <= {w["code"] for w in latest["warnings"]}
    refused = await _trust(client, people["approver"], latest["content_hash"], "polymarket-traiding-bot")
    assert refused.json()["error"]["code"] == "SKILL_MALICIOUS"
    banned = await client.post(
        "/api/skills/polymarket-traiding-bot/ban", json={"reason": "malware"}, headers=people["approver"].headers
    )
    assert banned.json()["state"] == "banned"
    body["update"] = True
    body["skill_md"] += "\nchanged\n"
    again = (await client.post("/api/skills", json=body, headers=people["operator"].headers)).json()
    assert again["items"][0]["error_code"] == "SKILL_BANNED"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_zip_import_and_a_bad_zip_leaves_nothing(
    client: httpx.AsyncClient, people: dict[str, UserWithKey]
) -> None:
    headers = {**people["operator"].headers, "content-type": "application/zip"}
    bad = _zip({"word-count/SKILL.md": SKILL_MD.encode(), "word-count/../../evil.py": b"x"})
    response = await client.post("/api/skills/import", content=bad, headers=headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "SKILL_PATH_TRAVERSAL"
    assert (await client.get("/api/skills", headers=people["viewer"].headers)).json()["items"] == []
    good = _zip(
        {
            "tree/word-count/SKILL.md": SKILL_MD.encode(),
            "tree/word-count/scripts/count.py": COUNT.encode(),
            "tree/notes/SKILL.md": b"# Notes\n\nKeep notes tidy.\n",
        }
    )
    response = await client.post("/api/skills/import", content=good, headers=headers)
    assert response.status_code == 201, response.text
    assert sorted((i["name"], i["status"]) for i in response.json()["items"]) == [
        ("notes", "created"),
        ("word-count", "created"),
    ]
    viewer = await client.post(
        "/api/skills/import", content=good, headers={**people["viewer"].headers, "content-type": "application/zip"}
    )
    assert viewer.status_code == 403
    anonymous = await client.get("/api/skills")
    assert anonymous.status_code == 401
