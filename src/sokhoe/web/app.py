"""``create_app(settings)``: the one place the web application is assembled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from sokhoe import __version__
from sokhoe.access.app_grants import AppTokens
from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine, access_reader
from sokhoe.access.guard import PLATFORM_SCOPES, GuardedRepository
from sokhoe.access.id_tokens import IdTokenKeys
from sokhoe.access.index import ensure_care_index
from sokhoe.access.kek import load_key_encryption_key
from sokhoe.access.passwords import dummy_hash, password_hasher
from sokhoe.access.policy import Policy
from sokhoe.access.principal import system_principal
from sokhoe.access.sms import make_gateway
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.errors import FhirError
from sokhoe.fhir.resources import format_instant
from sokhoe.interop.subscriptions import api as subscriptions_api
from sokhoe.interop.subscriptions.runtime import build_dispatcher, run_with_app
from sokhoe.store import MemoryStore
from sokhoe.store.ports import FhirStore
from sokhoe.web import (
    auth_api,
    bulk_api,
    checkin_api,
    consent_api,
    dashboard_api,
    deps,
    fhir_api,
    hl7_api,
    links_api,
    mpi_api,
    oidc_api,
    ops_api,
    prescribing_api,
    signing_api,
    smart_api,
    smart_authorize,
    terminology_api,
    validate_api,
)
from sokhoe.web.ops_api import RequestObserver
from sokhoe.web.pages import clinic as clinic_pages
from sokhoe.web.pages import pharmacy as pharmacy_pages
from sokhoe.web.pages import portal as portal_pages
from sokhoe.web.responses import (
    fhir_error_handler,
    http_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from sokhoe.web.security import harden

TEMPLATES = Environment(
    loader=FileSystemLoader(str(resources.files("sokhoe.web") / "templates")),
    autoescape=select_autoescape(["html"]),
)


def create_app(settings: Settings, store: FhirStore | None = None) -> FastAPI:
    """Build the app over ``store`` (opened from ``settings.database_url`` when not given)."""
    app = FastAPI(
        title="sokhoe — shared health record",
        version=__version__,
        description="FHIR R4 shared health record for Vietnam (sổ sức khỏe điện tử).",
        docs_url=None,  # served from local files by web/security.py
        redoc_url=None,
    )
    harden(app, settings.cors_origins)
    app.add_middleware(RequestObserver)  # outermost: ids, counts and logs every request
    if store is None:
        store = settings.open_store()
    app.state.settings = settings
    app.state.store = store
    app.state.started = format_instant(datetime.now(UTC))
    engine = access_engine(store)
    configured_kek = settings.key_encryption_key
    kek = load_key_encryption_key(
        settings.var_dir, configured_kek.get_secret_value() if configured_kek else None
    )
    dummy_hash(password_hasher(settings))  # made now: no sign-in pays for it
    app.state.tokens = TokenService(
        engine,
        timedelta(minutes=settings.token_minutes),
        kek=kek,
        reader=access_reader(store),
    )
    app.state.id_keys = IdTokenKeys(engine, kek)
    app.state.app_tokens = AppTokens(app.state.tokens, app.state.id_keys, settings.fhir_base)
    app.state.policy = Policy(store, check_in_opens_record=settings.check_in_opens_record)
    app.state.auditor = AuditLog(engine)
    ensure_care_index(store)
    app.state.repository = GuardedRepository(
        store,
        system_principal("sokhoe-platform", "sokhoe platform", PLATFORM_SCOPES),
        app.state.policy,
        app.state.auditor,
        base_url=settings.fhir_base,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        audit_reads=False,
    )
    app.state.sms = make_gateway(
        settings.sms_gateway,
        settings.var_dir / "sms-outbox.jsonl",
        settings.sms_url,
        settings.sms_token,
        settings.sms_timeout,
    )
    if settings.subscriptions:  # the dispatcher runs with the server (sokhoe subscriptions)
        run_with_app(app, build_dispatcher(settings, store, engine, auditor=app.state.auditor))
    if settings.national_rx_deliver:  # the outbox's delivery (sokhoe prescriptions deliver)
        from sokhoe.prescribing.national.runtime import deliver_with_app

        deliver_with_app(app, settings, store, kek=kek, auditor=app.state.auditor)
    if settings.glass_alerts and not isinstance(store, MemoryStore):
        # the citizen's SMS on break-the-glass (also: sokhoe audit glass-alerts); not over the
        # in-memory store, whose one shared connection is for a single thread's experiments
        from sokhoe.portal.glass_alerts import alerts_with_app

        alerts_with_app(app, settings, store, app.state.sms, app.state.auditor)
    app.add_exception_handler(FhirError, fhir_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    signed_in = [Depends(deps.signed_in)]
    app.include_router(ops_api.router)  # /health, /metrics: no sign-in (see ops_api)
    app.include_router(auth_api.router)
    app.include_router(smart_authorize.router)  # pages: the consent screen, and /auth/jwks
    app.include_router(smart_api.router)  # public, and before fhir_api's /fhir/{type}/{id}
    if settings.oidc_issuer:  # citizen sign-in through VNeID-like providers, when configured
        app.include_router(oidc_api.router_for(settings))
    app.include_router(checkin_api.router, dependencies=signed_in)
    app.include_router(links_api.router, dependencies=signed_in)
    app.include_router(consent_api.router, dependencies=signed_in)
    app.include_router(mpi_api.router, dependencies=signed_in)
    app.include_router(signing_api.router, dependencies=signed_in)
    app.include_router(prescribing_api.router, dependencies=signed_in)
    # before fhir_api, whose read route would take /CodeSystem/$lookup for an id
    app.include_router(terminology_api.router, dependencies=signed_in)
    app.include_router(bulk_api.router, dependencies=signed_in)  # before fhir_api, as above
    # Subscription writes are registered (criteria, endpoint, owner): before fhir_api
    app.include_router(subscriptions_api.router, dependencies=signed_in)
    app.include_router(validate_api.router, dependencies=signed_in)  # before fhir_api too
    app.include_router(fhir_api.router, dependencies=signed_in)
    app.include_router(hl7_api.router, dependencies=signed_in)
    app.include_router(dashboard_api.router)  # pages: signs in itself, aggregates only
    app.include_router(clinic_pages.router)  # pages: cookie sign-in, through the same door
    app.include_router(pharmacy_pages.router)  # the pharmacists' pages, the same way
    app.include_router(portal_pages.router)  # the citizens' pages, the same way
    static = resources.files("sokhoe.web") / "static"
    # the pages' own assets, and the browser libraries `make install` copies from npm
    app.mount("/clinic/static", StaticFiles(directory=str(static / "clinic")), name="clinic")
    app.mount("/portal/static", StaticFiles(directory=str(static / "portal")), name="portal")
    app.mount(
        "/static/vendor",
        StaticFiles(directory=str(static / "vendor"), check_dir=False),
        name="vendor",
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> HTMLResponse:
        html = TEMPLATES.get_template("home.html").render(
            version=__version__, fhir_base=settings.fhir_base
        )
        return HTMLResponse(html)

    return app
