"""Connected apps on ``/portal/devices``: the apps the citizen let read their health book
(SMART App Launch, ``web/smart_authorize.py``), and disconnecting one, which ends its refresh
token and every access token it holds at once (``access/app_grants.py``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.app_grants import ConnectedApp, connected_apps, disconnect
from sokhoe.access.audit import agent_key
from sokhoe.messages import Message
from sokhoe.portal.app_consent import describe_all
from sokhoe.web.pages import common
from sokhoe.web.pages.portal.base import Citizen, page

router = APIRouter()


@dataclass(frozen=True)
class Shown:
    app: ConnectedApp
    lines: list[Message]


def _agent(citizen: Citizen) -> str:
    return agent_key(replace(citizen.who, app=None))


def connected(citizen: Citizen) -> list[Shown]:
    """The apps this phone connected, each with what it may do in plain words."""
    found = connected_apps(citizen.engine, _agent(citizen))
    return [Shown(a, describe_all(a.scope.split())) for a in found]


@router.post("/devices/apps/{grant}/disconnect")
async def disconnect_app(request: Request, grant: str) -> Response:
    """Disconnect one app of this citizen's (another person's grant id changes nothing)."""

    async def end(citizen: Citizen) -> Response:
        await run_in_threadpool(disconnect, citizen.engine, _agent(citizen), grant[:64])
        return common.redirect(request, "/portal/devices")

    return await page(request, end)
