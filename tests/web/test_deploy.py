"""``deploy/``: Debian's nginx, configured by ``deploy/nginx/sokhoe.conf`` as it ships, in
front of the app; a receptionist and a connected system sign in through it.

Only what a test machine cannot have is swapped in the file: the ports, the certificate (one
made here for 127.0.0.1) and the log folder. Everything the README promises of the front is
checked through it: HTTPS redirect, HSTS beside the app's own headers, request ids joined to
nginx's log, a log line without path or query, ``/metrics`` refused, Secure session cookies.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sokhoe.access.clients import create_client
from tests.browser import free_port, serving
from tests.clinic.clinic_world import PASSWORD, make_world

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CCCD = "079090001234"


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _site(folder: Path, https: int, http: int, app: int, cert: Path, key: Path) -> str:
    """The shipped site file with this machine's ports, certificate and log folder."""
    site = (DEPLOY / "nginx" / "sokhoe.conf").read_text()
    swaps = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app};",
        "/etc/ssl/sokhoe/fullchain.pem": str(cert),
        "/etc/ssl/sokhoe/privkey.pem": str(key),
        "/var/log/nginx/": f"{folder}/",
    }
    for old, new in swaps.items():
        assert old in site, f"deploy/nginx/sokhoe.conf no longer has {old!r}"
        site = site.replace(old, new)
    return site


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[str, str, Path, Path, object]]:
    """(https URL, http URL, certificate, nginx's access log, the clinic world)."""
    https, http, app_port = free_port(), free_port(), free_port()
    world = make_world(tmp_path / "world", f"https://127.0.0.1:{https}")
    cert, key = _certificate(tmp_path)
    nginx_dir = tmp_path / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (nginx_dir / sub).mkdir(parents=True)
    nginx_dir.chmod(0o777)
    (nginx_dir / "sokhoe.conf").write_text(
        _site(nginx_dir, https, http, app_port, cert, key), encoding="utf-8"
    )
    temp = " ".join(
        f"{sub}_temp_path {nginx_dir / sub};"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = (
        f"pid {nginx_dir / 'nginx.pid'}; error_log {nginx_dir / 'error.log'}; daemon off;"
        f" worker_processes 1; events {{}} http {{ {temp} include {nginx_dir / 'sokhoe.conf'}; }}"
    )
    (nginx_dir / "nginx.conf").write_text(main, encoding="utf-8")
    test = subprocess.run(
        [
            NGINX,
            "-t",
            "-q",
            "-e",
            str(nginx_dir / "error.log"),
            "-c",
            str(nginx_dir / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stderr + (nginx_dir / "error.log").read_text()
    with serving(world.app, app_port):
        process = subprocess.Popen(
            [NGINX, "-e", str(nginx_dir / "error.log"), "-c", str(nginx_dir / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"https://127.0.0.1:{https}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(
                        f"{base}/health/live",
                        verify=ssl.create_default_context(cafile=str(cert)),
                        timeout=2,
                    )
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield base, f"http://127.0.0.1:{http}", cert, nginx_dir / "sokhoe.access.log", world
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_signing_in_through_the_tls_front(front: tuple[str, str, Path, Path, object]) -> None:
    base, plain, cert, access_log, world = front
    app = world.app  # type: ignore[attr-defined]
    # plain HTTP is only ever redirected to HTTPS
    moved = httpx.get(f"{plain}/clinic/sign-in", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"].startswith("https://")

    with httpx.Client(
        base_url=base, verify=ssl.create_default_context(cafile=str(cert)), follow_redirects=False
    ) as web:
        # a receptionist signs in to the clinic pages: the session cookie is Secure
        page = web.get("/clinic/sign-in")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=63072000")
        assert page.headers["x-frame-options"] == "DENY"  # the app's own, passed through
        signed = web.post("/clinic/sign-in", data={"username": "tieptan", "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        cookies = signed.headers.get_list("set-cookie")
        assert cookies and all("secure" in c.lower() for c in cookies)
        assert web.get("/clinic").status_code == 200  # the session works through the front

        # a connected system signs in with client credentials and searches by citizen ID
        new = create_client(app.state.tokens.engine, "HIS 01001", ["system/*.cruds"], "01001")
        token = web.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": new.client_id,
                "client_secret": new.client_secret,
            },
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        search = web.get(f"/fhir/Patient?identifier={CCCD}", headers=auth)
        assert search.status_code == 200
        request_id = search.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)

        # metrics are not served to the outside, health is
        assert web.get("/metrics").status_code == 404
        assert web.get("/health").json()["status"] == "pass"

    # nginx's line for that search carries the same id, and neither path nor query
    lines = [json.loads(line) for line in access_log.read_text().splitlines()]
    mine = [line for line in lines if line["request_id"] == request_id]
    assert len(mine) == 1 and mine[0]["status"] == 200 and mine[0]["method"] == "GET"
    text = access_log.read_text()
    assert CCCD not in text and "/fhir/" not in text and "tieptan" not in text
