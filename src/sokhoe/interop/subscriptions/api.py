"""``/fhir/Subscription`` writes: registered (criteria and endpoint checked, owner recorded)
instead of stored as plain resources. Included before the generic FHIR router, which keeps
reads, searches and history of Subscriptions.
See: https://hl7.org/fhir/R4/subscription.html
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.principal import Principal
from sokhoe.errors import NotSupported
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy
from sokhoe.interop.subscriptions.registration import register, unregister
from sokhoe.web import deps
from sokhoe.web.fhir_api import resource_response
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

LOCAL = Principal(kind="client", subject="local", display="security off", role="system")
"""The owner recorded when the server runs without security (local experiments only)."""


def _endpoints(request: Request) -> EndpointPolicy:
    """``app.state.subscription_endpoints`` when set (tests put a resolver there: DNS is the
    edge they cannot run), else the settings' rule."""
    injected = getattr(request.app.state, "subscription_endpoints", None)
    if isinstance(injected, EndpointPolicy):
        return injected
    return EndpointPolicy.from_settings(deps.settings(request))


def _caller(request: Request) -> Principal:
    return deps.principal(request) if deps.settings(request).security else LOCAL


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.tokens.engine  # the access database (same as the store's)
    return engine


@router.post("/Subscription", summary="Create a Subscription (checked, then activated)")
async def create_subscription(request: Request) -> FhirResponse:
    repo = deps.repository(request)
    if request.headers.get("if-none-exist"):
        raise NotSupported("Conditional create is not supported for Subscription")
    body = await deps.json_body(request)
    policy = _endpoints(request)
    outcome = await run_in_threadpool(
        lambda: register(repo, _engine(request), _caller(request), body, policy)
    )
    return resource_response(outcome.resource, outcome.status, request, repo.base_url)


@router.put("/Subscription", summary="Conditional update (not supported for Subscription)")
async def conditional_update_subscription(request: Request) -> FhirResponse:
    raise NotSupported("Conditional update is not supported for Subscription; PUT by id")


@router.put("/Subscription/{rid}", summary="Update a Subscription (checked, re-registered)")
async def update_subscription(rid: str, request: Request) -> FhirResponse:
    repo = deps.repository(request)
    body = await deps.json_body(request)
    policy = _endpoints(request)
    if_match = request.headers.get("if-match")
    outcome = await run_in_threadpool(
        lambda: register(
            repo, _engine(request), _caller(request), body, policy, rid=rid, if_match=if_match
        )
    )
    return resource_response(outcome.resource, outcome.status, request, repo.base_url)


@router.delete("/Subscription/{rid}", summary="Delete a Subscription (stops notifications)")
async def delete_subscription(rid: str, request: Request) -> Response:
    repo = deps.repository(request)
    outcome = await run_in_threadpool(
        lambda: unregister(repo, _engine(request), _caller(request), rid)
    )
    if outcome is None:
        return Response(status_code=204)
    return Response(status_code=204, headers={"ETag": outcome.resource.etag})


__all__ = ["router"]
