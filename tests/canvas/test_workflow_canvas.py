"""A workflow step opens a canvas for its run (both databases): the tool knows the step's agent and run."""

from __future__ import annotations

from atom.canvas import service as canvas_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.workflows.conftest import engine, make_workflow, start, wait_run

__all__ = ["engine"]

SOURCE = """name: weekly-report
agent: reporter
steps:
  - id: chart
    action: present_chart
    with:
      title: Tickets
      chart_type: pie
      labels: [open, closed]
      series: [{values: [3, 9]}]
"""


async def test_a_step_presents_a_canvas_of_its_run(settings: Settings, db: Database, engine: StepRunner) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="reporter")
    workflow = await make_workflow(db, engine, SOURCE)
    started = await start(engine, workflow)
    view = await wait_run(db, started.run_id, status="succeeded")
    output = view.steps["chart"].output
    assert output is not None and output["kind"] == "chart"
    async with db.session_scope() as s:
        canvas = await canvas_service.get(session=s, canvas_id=output["canvas_id"])
    assert canvas.workflow_run_id == started.run_id and canvas.owner_agent_id == agent.id
    assert canvas.content["series"][0]["values"] == [3.0, 9.0]
