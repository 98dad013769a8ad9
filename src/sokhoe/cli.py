"""The ``sokhoe`` command: serve, demo, load, bench."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sokhoe.config import Settings

if TYPE_CHECKING:
    from sokhoe.store.ports import FhirStore
    from sokhoe.store.sql import SqlStore

app = typer.Typer(
    help="sokhoe — the shared lifelong health record (sổ sức khỏe điện tử).",
    no_args_is_help=True,
    add_completion=False,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@contextmanager
def _opened(db: str | None) -> Iterator[SqlStore]:
    """The store a command works on (migrated), closed however the command ends."""

    settings = _settings(db)
    store = settings.open_store()
    try:
        yield store
    finally:
        store.close()


def _settings(db: str | None) -> Settings:
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    return settings


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    demo: Annotated[int, typer.Option(help="Load a demo population of N people if empty")] = 0,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (default: one per core; 1 for an in-memory store)"),
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="json (one object per line, for log shippers) or text")
    ] = "json",
) -> None:
    """Serve the FHIR API, documentation and pages."""
    import os

    import uvicorn

    from sokhoe.logs import config as log_config

    if log_format not in ("json", "text"):
        raise typer.BadParameter("json or text", param_hint="--log-format")
    logging_config = log_config(log_format)
    settings = _settings(db)
    count = _worker_count(workers, settings.database_url)
    settings = settings.model_copy(update={"workers": count})
    if count > 1:  # before sokhoe.metrics is imported: every process counts into files
        from sokhoe.web.served import metrics_environment

        os.environ.update(metrics_environment(settings.var_dir))

    from sokhoe.web.app import create_app

    if settings.base_url == Settings.model_fields["base_url"].default:
        settings = settings.model_copy(update={"base_url": f"http://{host}:{port}"})
    application = create_app(settings)
    from pydantic import SecretStr

    from sokhoe.access.passwords import password_hasher
    from sokhoe.bootstrap import (
        demo_accounts,
        demo_clinic,
        demo_password,
        demo_portal,
        ensure_demo,
        publish_registry,
    )

    repo = application.state.repository
    if demo:
        ensure_demo(repo, demo, settings.var_dir)
    publish_registry(repo)
    if demo:
        print(
            demo_accounts(
                repo,
                application.state.tokens.engine,
                settings.base_url,
                settings.var_dir,
                hasher=password_hasher(settings),
            )
        )
        _warehouse_in_background(application.state.store, settings)
        print(f"dashboard: {settings.base_url}/dashboard (sign in as the analyst)")
        engine = application.state.tokens.engine
        p12 = None  # a server configured with certificates keeps its own
        if settings.signing_p12_dir is None:  # the demo's doctors sign with development ones
            p12 = settings.var_dir / "p12"
            password = SecretStr(demo_password(settings.var_dir))
            settings = settings.model_copy(
                update={"signing_p12_dir": p12, "signing_p12_password": password}
            )
            application.state.settings = settings
        made = demo_clinic(
            repo, engine, settings.base_url, settings.var_dir, p12, hasher=password_hasher(settings)
        )
        print(made)
        print(demo_portal(repo, engine, settings.base_url, settings.var_dir))
    options: dict[str, Any] = {
        "log_config": logging_config,
        "access_log": False,  # our own line per request instead (sokhoe/logs.py)
    }
    if count == 1:
        uvicorn.run(application, host=host, port=port, **options)
        return
    from sokhoe.web.served import serve_workers

    os.environ.update(settings.environment())  # each worker reads the parent's settings too
    print(f"serving with {count} worker processes")
    serve_workers(
        host,
        port,
        count,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        **options,
    )


HEALTHCHECK_SECONDS = 60
"""How long uvicorn's supervisor waits for a worker's answer before it kills and replaces it:
its default (5 s) is shorter than a worker's start on a loaded 2-core machine (importing
the app and opening the store), which it would otherwise kill before it ever served."""


def _worker_count(asked: int | None, database_url: str) -> int:
    """The worker processes to run: ``asked``, or one per core; one for an in-memory store,
    which a second process would not see."""
    import os

    if database_url.rstrip("/") == "sqlite:" or ":memory:" in database_url:
        if asked not in (None, 1):
            raise typer.BadParameter(
                "an in-memory store is served by one process", param_hint="--workers"
            )
        return 1
    if asked is not None and asked < 1:
        raise typer.BadParameter("at least one worker", param_hint="--workers")
    return asked or os.cpu_count() or 1


def _warehouse_in_background(store: FhirStore, settings: Settings) -> None:
    """Build (or refresh) the demo warehouse while the server starts: the dashboard says
    "being built" until it is done."""
    import threading

    from sokhoe.warehouse.demo import build_demo_warehouse

    def run() -> None:
        build_demo_warehouse(store, settings)
        print("dashboard: warehouse ready")

    threading.Thread(target=run, name="demo-warehouse", daemon=True).start()


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder")],
    patients: Annotated[int, typer.Option(help="Number of people")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same population)")] = 1,
    fmt: Annotated[str, typer.Option("--format", help="bundles or ndjson")] = "bundles",
) -> None:
    """Write a synthetic Vietnamese population as FHIR transaction bundles or NDJSON."""
    from sokhoe.demo.command import demo_command

    demo_command(patients=patients, seed=seed, out=out, fmt=fmt)


@app.command()
def load(
    paths: Annotated[list[Path], typer.Argument(help="Bundle JSON / NDJSON files or folders")],
    db: DbOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes validating ahead of the writer (default: by size and cores)"),
    ] = None,
) -> None:
    """Load transaction/batch bundles and NDJSON (files or folders) into the store."""
    from tqdm import tqdm

    from sokhoe.access.guard import platform_repository
    from sokhoe.interop.load import load_paths

    settings = _settings(db)
    store = settings.open_store()
    repo = platform_repository(store, settings.fhir_base, name="sokhoe-load")
    with tqdm(unit=" resources", disable=None) as bar:
        report = load_paths(repo, paths, progress=bar.update, workers=workers)
    store.close()
    print(
        f"loaded {report.resources} resources from {report.files} files ({report.bundles} bundles)"
    )
    for err in report.errors:
        print(f"error: {err}", file=sys.stderr)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def bench(
    patients: Annotated[int, typer.Option(help="Population size")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    workdir: Annotated[Path, typer.Option(help="Scratch folder (data and databases)")] = Path(
        "var/bench"
    ),
    results: Annotated[Path, typer.Option(help="Where the JSON summary goes")] = Path(
        "bench/results"
    ),
    ndjson: Annotated[bool, typer.Option(help="Also time the bulk NDJSON load")] = True,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="An empty PostgreSQL database to load into instead of SQLite files "
            "(partitioned by patient with SOKHOE_PG_PARTITIONS=N)",
        ),
    ] = None,
    queries_only: Annotated[
        bool,
        typer.Option(
            "--queries-only",
            help="Time the queries again on the database an earlier run of the same size "
            "and seed left (--workdir's SQLite file, or the PostgreSQL --db it loaded; its "
            "files stay in --workdir); no generation, no load",
        ),
    ] = False,
) -> None:
    """Ingest throughput (against a raw-insert floor) and query latencies."""
    from sokhoe.bench import run_bench
    from sokhoe.bench.runner import render, rerun_queries

    if queries_only:
        print(render(rerun_queries(patients, seed, workdir, results, db=db)))
        return
    partitions = Settings().pg_partitions
    print(
        render(
            run_bench(patients, seed, workdir, results, ndjson=ndjson, db=db, partitions=partitions)
        )
    )


@app.command("bench-mpi")
def bench_mpi(
    patients: Annotated[int, typer.Option(help="Population size (before duplicates)")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    workdir: Annotated[Path, typer.Option(help="Scratch folder (data and database)")] = Path(
        "var/bench-mpi"
    ),
    results: Annotated[Path, typer.Option(help="Where the JSON summary goes")] = Path(
        "bench/results"
    ),
    febrl: Annotated[
        bool, typer.Option("--febrl", help="$match on the public FEBRL 4 benchmark instead")
    ] = False,
    no_identifier: Annotated[
        bool, typer.Option("--no-identifier", help="FEBRL without its soc_sec_id")
    ] = False,
) -> None:
    """Matching accuracy (ours and plain Splink) on noisy duplicates, and $match latency;
    with ``--febrl``, top-1 recall of $match on FEBRL 4 (needs the ``bench`` extra)."""
    if febrl:
        from sokhoe.bench import febrl as bench

        default = Path("var/bench-mpi")
        where = Path("var/bench-febrl") if workdir == default else workdir
        print(bench.render(bench.run_febrl_bench(where, results, identifiers=not no_identifier)))
        return
    from sokhoe.bench.mpi import render, run_mpi_bench

    print(render(run_mpi_bench(patients, seed, workdir, results)))


@app.command("bench-warehouse")
def bench_warehouse(
    patients: Annotated[int, typer.Option(help="Population size")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    workdir: Annotated[Path, typer.Option(help="Scratch folder")] = Path("var/bench-warehouse"),
    results: Annotated[Path, typer.Option(help="Where the JSON summary goes")] = Path(
        "bench/results"
    ),
) -> None:
    """Warehouse build and 1 % refresh against DuckDB's read_json floor; indicator latency."""
    from sokhoe.bench.warehouse import render, run_warehouse_bench

    print(render(run_warehouse_bench(patients, seed, workdir, results)))


@app.command("bench-clinic")
def bench_clinic(
    visits: Annotated[int, typer.Option(help="Finished visits of the patient")] = 500,
    requests: Annotated[int, typer.Option(help="Timed requests per measure")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed requests before each measure")] = 5,
    labs: Annotated[int, typer.Option(help="Lab results per visit")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
) -> None:
    """The clinic pages over HTTP: chart, htmx fragments, first-load bytes; JSON on stdout."""
    import json

    from sokhoe.bench.clinic_pages import run

    print(json.dumps(run(visits, requests, warmup, labs, seed), ensure_ascii=False, indent=2))


@app.command("bench-prescribing")
def bench_prescribing(
    patients: Annotated[int, typer.Option(help="People, one prescription issued for each")] = 30,
    past: Annotated[int, typer.Option(help="Past prescriptions of each person")] = 50,
    pharmacies: Annotated[int, typer.Option(help="Pharmacies dispensing at once")] = 8,
) -> None:
    """``$prescribe`` with every check on against a long history, then ``$dispense`` by several
    pharmacies at once; JSON on stdout."""
    import json

    from sokhoe.bench.prescribing import run

    print(json.dumps(run(patients, past, pharmacies), ensure_ascii=False, indent=2))


client_app = typer.Typer(help="Connected systems (OAuth client credentials).", no_args_is_help=True)
app.add_typer(client_app, name="client")


EndpointOption = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        help="Where its Subscription notifications may go (repeatable): an origin "
        "(https://his.bvcr.vn, https://his.bvcr.vn:8443) or, for a private network, a CIDR "
        "block or address (10.20.0.0/24)",
    ),
]


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Option(help="What the system is, e.g. 'HIS Bệnh viện A'")],
    scope: Annotated[
        list[str] | None, typer.Option(help="SMART scope, e.g. system/Patient.rs")
    ] = None,
    facility: Annotated[str | None, typer.Option(help="Facility code it acts for")] = None,
    endpoint: EndpointOption = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help="Register an app for SMART App Launch with this redirect URI (repeatable)",
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="An app that keeps no secret (PKCE only)")
    ] = False,
    db: DbOption = None,
) -> None:
    """Register a system; prints {"client_id", "client_secret", "endpoints"} (the secret is
    shown once; endpoints: its allow-list of notification endpoints, normalised). With
    ``--redirect-uri``: register an app a person connects to their record (SMART App
    Launch); prints {"client_id", "client_secret"} (null for a ``--public`` app)."""
    import json

    from sokhoe.access.clients import create_client
    from sokhoe.interop.subscriptions import allowlist

    if redirect_uri:
        _create_app(name, redirect_uri, public, bool(scope or facility or endpoint), db)
        return
    if public:
        print("error: --public is for apps: give their --redirect-uri", file=sys.stderr)
        raise typer.Exit(2)
    with _opened(db) as store:
        try:
            for entry in endpoint or []:  # all checked before the client exists
                allowlist.normalise_entry(entry)
            new = create_client(store.writer, name, scope or [], facility)
            listed = allowlist.add(store.writer, new.client_id, endpoint or [])
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(
        json.dumps(
            {"client_id": new.client_id, "client_secret": new.client_secret, "endpoints": listed}
        )
    )


def _create_app(
    name: str, redirect_uris: list[str], public: bool, system_options: bool, db: str | None
) -> None:
    """``client create --redirect-uri``: an app acts for the person who connects it, so it
    has no scopes, facility or endpoints of its own (the person's consent decides)."""
    import json

    from sokhoe.access.apps import create_app_client

    if system_options:
        print(
            "error: an app (--redirect-uri) has no --scope, --facility or --endpoint: the "
            "person who connects it decides what it may read",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    with _opened(db) as store:
        try:
            new = create_app_client(store.writer, name, redirect_uris, public)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(json.dumps({"client_id": new.client_id, "client_secret": new.client_secret}))


@client_app.command("keys")
def client_keys(
    client_id: Annotated[str, typer.Argument(help="The client_id of the system")],
    jwks: Annotated[
        Path, typer.Option(help="A JSON file with the system's public keys (a JWK Set)")
    ],
    db: DbOption = None,
) -> None:
    """Register the public keys a system signs its token requests with (SMART Backend
    Services, private_key_jwt, RS384 or ES384); replaces earlier keys."""
    import json

    from sokhoe.access.client_assertion import register_keys

    try:
        keys = json.loads(jwks.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read a JWK Set from {jwks}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    with _opened(db) as store:
        try:
            count = register_keys(store.writer, client_id, keys)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(f"{client_id}: {count} public key(s) registered")


@client_app.command("endpoints")
def client_endpoints(
    client_id: Annotated[str, typer.Argument(help="The client_id of the system")],
    add: Annotated[
        list[str] | None,
        typer.Option("--add", help="Allow an origin or network (repeatable)"),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="Withdraw a listed origin or network (repeatable)"),
    ] = None,
    db: DbOption = None,
) -> None:
    """List (no option), add to or remove from the allow-list of a system's notification
    endpoints; prints the list after, one entry a line. A removal applies to Subscriptions
    already registered: their next notification is not sent."""
    from sqlalchemy import select

    from sokhoe.interop.subscriptions import allowlist
    from sokhoe.store.sql.access_schema import auth_client

    with _opened(db) as store:
        with store.writer.connect() as conn:
            known = conn.execute(
                select(auth_client.c.client_id).where(auth_client.c.client_id == client_id)
            ).first()
        try:
            if known is None:
                raise ValueError(f"no client {client_id}")
            for entry in add or []:  # all checked before anything changes
                allowlist.normalise_entry(entry)
            if remove:
                allowlist.remove(store.writer, client_id, remove)
            listed = allowlist.add(store.writer, client_id, add or [])
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    for entry in listed:
        print(entry)


@client_app.command("deactivate")
def client_deactivate(client_id: str, db: DbOption = None) -> None:
    """Stop a system (or an app) signing in; the tokens it holds are refused at once."""
    from sokhoe.access.apps import deactivate_app
    from sokhoe.access.clients import deactivate_client

    with _opened(db) as store:
        try:
            if client_id.startswith("app-"):
                deactivate_app(store.writer, client_id)
            else:
                deactivate_client(store.writer, client_id)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(f"deactivated {client_id}")


user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="doctor, nurse, receptionist, analyst, …")],
    name: Annotated[str, typer.Option(help="Display name")],
    facility: Annotated[str | None, typer.Option(help="Facility code")] = None,
    commune: Annotated[str | None, typer.Option(help="Commune code")] = None,
    db: DbOption = None,
) -> None:
    """Create a staff account; the password is asked for, never taken from the command line."""
    from sokhoe.access.accounts import create_user
    from sokhoe.access.passwords import password_hasher

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    hasher = password_hasher(_settings(db))
    with _opened(db) as store:
        try:
            create_user(
                store.writer, username, password, role, name, facility, commune, hasher=hasher
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(f"created {username} ({role})")


@user_app.command("add-facility")
def user_add_facility(
    username: str,
    facility: Annotated[str, typer.Argument(help="Another facility code the person works at")],
    db: DbOption = None,
) -> None:
    """Let a facility's staff member also work at another facility (same role); they pick
    the facility after signing in to /clinic."""
    from sokhoe.access.accounts import add_facility, facilities_of

    with _opened(db) as store:
        try:
            add_facility(store.writer, username, facility)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        print(f"{username} works at {', '.join(facilities_of(store.writer, username))}")


@user_app.command("practitioner")
def user_practitioner(
    username: str,
    certificate: Annotated[
        str, typer.Option("--cchn", help="Practising-certificate number (chứng chỉ hành nghề)")
    ],
    db: DbOption = None,
) -> None:
    """Register a clinician as a Practitioner with their practising-certificate number, at
    their facility; what they sign and prescribe then names it (the national prescription
    system knows prescribers only by that number)."""
    from sokhoe.access.accounts import account
    from sokhoe.access.guard import platform_repository
    from sokhoe.clinic.setup import add_practitioner

    settings = _settings(db)
    with _opened(db) as store:
        who = account(store.writer, username)
        if who is None or who.facility is None or not certificate.strip():
            print(f"error: no active facility staff account {username!r}", file=sys.stderr)
            raise typer.Exit(2)
        registry = platform_repository(store, settings.fhir_base)
        pid = add_practitioner(
            registry,
            store.writer,
            username,
            who.display,
            str(who.role),
            who.facility,
            certificate.strip(),
        )
    print(f"{username} is Practitioner/{pid}")


@user_app.command("totp")
def user_totp(username: str, db: DbOption = None) -> None:
    """Enrol a TOTP authenticator; prints the otpauth:// URI to scan."""
    from sokhoe.access.accounts import enable_totp

    with _opened(db) as store:
        print(enable_totp(store.writer, username))


@user_app.command("deactivate")
def user_deactivate(username: str, db: DbOption = None) -> None:
    """Stop a staff member signing in; the tokens they hold are refused at once."""
    from sokhoe.access.accounts import set_active

    with _opened(db) as store:
        try:
            set_active(store.writer, username, False)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    print(f"deactivated {username}")


mpi_app = typer.Typer(help="Master patient index: match, link, review.", no_args_is_help=True)
app.add_typer(mpi_app, name="mpi")


@mpi_app.command("link")
def mpi_link(
    db: DbOption = None,
    patient: Annotated[
        list[str] | None, typer.Option(help="Patient id to match (repeatable; default: all)")
    ] = None,
) -> None:
    """Match patients against the rest: merge certain pairs, queue probable ones for review."""
    from tqdm import tqdm

    from sokhoe.access.guard import platform_repository
    from sokhoe.mpi.linking import link_all
    from sokhoe.mpi.matching import Matcher

    with _opened(db) as store:
        repo = platform_repository(store, _settings(db).fhir_base, name="sokhoe-mpi")
        ids = patient or [r.id for r in store.iter_all("Patient")]
        with tqdm(total=len(ids), unit=" patients", disable=None) as bar:
            report = link_all(repo, Matcher(repo), ids, bar.update)
    print(f"checked {report.checked}: {len(report.merged)} merged, {report.queued} queued")


audit_app = typer.Typer(help="Audit log: verify the hash chain.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


AnchorsOption = Annotated[
    Path | None,
    typer.Option("--anchors", help="Anchor file written by 'sokhoe audit anchor'"),
]


@audit_app.command("verify")
def audit_verify(db: DbOption = None, anchors: AnchorsOption = None) -> None:
    """Recompute the audit log's hash chain; exit code 1 if a row was edited or deleted, or
    (with --anchors) if the newest rows were cut off or the tail rewritten."""
    from sokhoe.access.audit import AuditLog, read_anchors

    try:
        saved = read_anchors(anchors) if anchors is not None else []
    except (OSError, ValueError) as exc:
        print(f"cannot read anchors: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    with _opened(db) as store:
        report = AuditLog(store.writer).verify(anchors=saved)
    if not report.ok:
        print(f"BROKEN at seq {report.first_bad_seq}: {report.reason}")
        raise typer.Exit(1)
    print(f"ok: {report.reason}; head seq {report.head_seq} {report.head}")


@audit_app.command("anchor")
def audit_anchor(
    db: DbOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Anchor file to append to (default: var/audit-anchors)")
    ] = None,
) -> None:
    """Append the chain's head (seq, hash) to an anchor file and print it. Copy the file off
    this machine (or mail the printed line): that is what makes a cut-off tail detectable."""
    from sokhoe.access.audit import AuditLog

    target = out or _settings(db).var_dir / "audit-anchors.jsonl"
    with _opened(db) as store:
        head = AuditLog(store.writer).head()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab") as fh:
        fh.write(head.to_json() + b"\n")
    print(head.to_json().decode())


@audit_app.command("glass-alerts")
def audit_glass_alerts(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit")] = False,
) -> None:
    """Text citizens whose record was opened by breaking the glass (each opening once; the
    server does the same every SOKHOE_GLASS_ALERT_SECONDS unless SOKHOE_GLASS_ALERTS=false).
    Several may run at once. The SMS gateway is SOKHOE_SMS_*."""
    import json
    import time

    from sokhoe.access.sms import make_gateway
    from sokhoe.portal.glass_alerts import build_alerts

    settings = _settings(db)
    gateway = make_gateway(
        settings.sms_gateway,
        settings.var_dir / "sms-outbox.jsonl",
        settings.sms_url,
        settings.sms_token,
        settings.sms_timeout,
    )
    with _opened(db) as store:
        alerts = build_alerts(settings, store, gateway)
        try:
            while True:
                report = alerts.run_once()
                if once:
                    print(json.dumps(report.__dict__))
                    return
                time.sleep(settings.glass_alert_seconds)
        except KeyboardInterrupt:
            pass


access_app = typer.Typer(help="The care-relationship index.", no_args_is_help=True)
app.add_typer(access_app, name="access")


@access_app.command("rebuild")
def access_rebuild(db: DbOption = None) -> None:
    """Derive the care-relationship index again from the stored records (record numbers,
    visits, consents, home addresses). Presence, guardians and broken glass recorded by the
    operations are not in the records and are lost: run it only on a database that never had
    the index, or to repair one."""
    from sokhoe.access.index import rebuild

    with _opened(db) as store:
        read = rebuild(store)
    print(f"rebuilt the care-relationship index from {read} records")


retention_app = typer.Typer(help="Records retention: purge deleted records.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("purge")
def retention_purge(
    db: DbOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Destroy them (default: a dry run that only lists)")
    ] = False,
) -> None:
    """Destroy deleted records whose retention period has passed (10 years; 20 psychiatric,
    occupational, accident; 30 deaths, organ donation). Live records are never purged."""
    from tqdm import tqdm

    from sokhoe.access.audit import AuditLog
    from sokhoe.access.retention import purge_expired

    with _opened(db) as store, tqdm(unit=" records", disable=None) as bar:
        report = purge_expired(store, AuditLog(store.writer), apply=apply, progress=bar.update)
    for rtype, rid, rule in report.purged:
        print(f"{rtype}/{rid}: {rule.years} years ({rule.reason})")
    verb = "purged" if apply else "would purge"
    note = f", {report.versions_removed} versions removed" if apply else " (dry run: --apply)"
    print(
        f"{verb} {len(report.purged)} of {report.checked} deleted records past 10 years; "
        f"{report.kept} still inside a longer period{note}"
    )


@app.command("backup")
def backup_command(
    out: Annotated[Path, typer.Option("--out", help="Backup file to write (+ FILE.json manifest)")],
    db: DbOption = None,
) -> None:
    """Back up the live store (SQLite or PostgreSQL) to FILE, with a manifest beside it."""
    from sokhoe.store.sql.backup import BackupError, backup

    try:
        report = backup(_settings(db).database_url, out)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    rows = sum(report.counts.values())
    print(
        f"backed up {report.dialect} revision {report.revision} to {report.path} "
        f"({report.size} bytes, {len(report.counts)} tables, {rows} rows, "
        f"{report.seconds:.1f} s); manifest {report.manifest}"
    )


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Option("--from", help="Backup file written by `sokhoe backup`")],
    db: DbOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target database that already holds data")
    ] = False,
) -> None:
    """Restore a backup into the store and check it against its manifest (stop the server)."""
    from sokhoe.store.sql.backup import BackupError, restore

    try:
        report = restore(_settings(db).database_url, source, force=force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    rows = sum(report.counts.values())
    print(
        f"restored {report.source} ({report.dialect} revision {report.revision}, "
        f"{len(report.counts)} tables, {rows} rows, {report.seconds:.1f} s): matches the manifest"
    )


def _register_sub_commands() -> None:
    """Each domain owns its own sub-command module; they are mounted here."""
    from sokhoe.clinic.cli import clinic_app, signature_app
    from sokhoe.ig.cli import ig_app
    from sokhoe.interop.claims.cli import claims_app
    from sokhoe.interop.dicom.cli import pacs_app
    from sokhoe.interop.hl7v2.cli import hl7_app
    from sokhoe.interop.legacy.cli import import_app
    from sokhoe.interop.subscriptions.cli import subscriptions_app
    from sokhoe.interop.sync.cli import sync_app
    from sokhoe.portal.cli import portal_app
    from sokhoe.prescribing.cli import catalogue_app
    from sokhoe.prescribing.national.cli import prescriptions_app
    from sokhoe.warehouse.cli import view_app, warehouse_app

    app.add_typer(hl7_app, name="hl7")
    app.add_typer(claims_app, name="claims")
    app.add_typer(import_app, name="import")
    app.add_typer(pacs_app, name="pacs")
    app.add_typer(sync_app, name="sync")
    app.add_typer(subscriptions_app, name="subscriptions")
    app.add_typer(view_app, name="view")
    app.add_typer(warehouse_app, name="warehouse")
    app.add_typer(signature_app, name="signature")
    app.add_typer(clinic_app, name="clinic")
    app.add_typer(catalogue_app, name="catalogue")
    app.add_typer(prescriptions_app, name="prescriptions")
    app.add_typer(portal_app, name="portal")
    app.add_typer(ig_app, name="ig")


_register_sub_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
