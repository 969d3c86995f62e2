"""Every `/api` router, each included with authentication attached.

Domain routers declare their full prefix (`/api/agents`): this FastAPI includes routers lazily,
so a route's own path is what metrics and logs see as its template.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from atom.agents.routes import router as agents_router
from atom.audit.routes import router as audit_router
from atom.canvas.routes import components_router as canvas_components_router
from atom.canvas.routes import router as canvas_router
from atom.chat.routes import router as chat_router
from atom.chat.ws import router as chat_ws_router
from atom.deps import current_principal
from atom.feedback.routes import ab_router as abtests_router
from atom.feedback.routes import router as feedback_router
from atom.governance.routes import router as governance_router
from atom.graduation.routes import router as graduation_router
from atom.guidance.routes import router as guidance_router
from atom.llm.routes import router as llm_router
from atom.memory.routes import router as memory_router
from atom.security.routes import router as security_router
from atom.security.secrets_routes import router as secrets_router
from atom.skills.routes import router as skills_router
from atom.training.routes import router as training_router
from atom.training.scenario_routes import router as training_scenarios_router
from atom.training.ws import router as training_ws_router
from atom.workflows.routes import router as workflows_router
from atom.workflows.routes import runs_router as workflow_runs_router

# Routes are matched in this order, one regular expression each (~1.5 us) until one matches; prefixes
# do not overlap, so the order decides only the cost. Governance first: its decision endpoint is asked
# before every action an external agent takes, far more often than any other route.
API_ROUTERS: tuple[APIRouter, ...] = (
    governance_router,
    security_router,
    secrets_router,
    audit_router,
    agents_router,
    llm_router,
    training_router,
    training_scenarios_router,
    workflows_router,
    workflow_runs_router,
    chat_router,
    memory_router,
    feedback_router,
    abtests_router,
    graduation_router,
    skills_router,
    canvas_router,
    canvas_components_router,
    guidance_router,
)
# WebSocket routers authenticate their own connections (a key in the query or header).
WS_ROUTERS: tuple[APIRouter, ...] = (training_ws_router, chat_ws_router)


def include_api_routers(app: FastAPI) -> None:
    for router in API_ROUTERS:
        if not router.prefix.startswith("/api"):
            raise ValueError(f"API router prefix must start with /api: {router.prefix!r}")
        # Authentication is attached here, so no /api route can forget it.
        app.include_router(router, dependencies=[Depends(current_principal)])
    for router in WS_ROUTERS:
        app.include_router(router)
