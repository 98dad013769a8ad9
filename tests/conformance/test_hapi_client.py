"""HAPI FHIR's generic client against a real ``sokhoe serve`` (issue 16, item 8).

A hospital vendor's Java integration talks to sokhoe through ``IGenericClient``; the session in
``tools/hapi/.../Client.java`` does what such an integration does first (create, conditional
create and update, search with paging, a transaction, ``$everything``, ``$validate``) and checks
each answer. The server is a process of its own on a SQLite file (``tests/interop/test_sync``'s
``Server``); the client signs in as a connected system with ``POST /auth/token``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests import forked
from tests.conformance import hapi
from tests.interop.test_sync import Server


class _Served(Server):
    """``sokhoe serve`` whose own links (paging, Location) name its real port."""

    def launch(self) -> None:
        self.process = forked.start(
            ["serve", "--db", self.url, "--port", str(self.port)],
            {"SOKHOE_VAR_DIR": str(self.folder / "var"), "SOKHOE_BASE_URL": self.base},
            self.folder / "server.log",
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    served = _Served(tmp_path_factory.mktemp("hapi-client") / "node")
    served.start()
    yield served
    served.stop()


def _token(server: Server, scopes_of: tuple[str, str | None]) -> str:
    client_id, secret = server.client(*scopes_of)
    r = httpx.post(
        f"{server.base}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_hapi_generic_client_session_passes(server: _Served) -> None:
    done = hapi.client(f"{server.base}/fhir", _token(server, ("HIS (HAPI client)", None)))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{_log(server.folder)}"
    steps = [line for line in done.stdout.splitlines() if line.startswith("ok ")]
    assert len(steps) == 9, done.stdout
    assert "pages" in done.stdout and "$everything" in done.stdout
    assert done.stdout.rstrip().endswith("OK all steps passed")


def test_hapi_client_fails_loudly_without_a_valid_token(server: _Served) -> None:
    """The script's checks are real: a forged token makes its first step fail, non-zero."""
    done = hapi.client(f"{server.base}/fhir", "forged.token.value")
    assert done.returncode == 1
    assert "FAILED create: HTTP 401" in done.stderr, done.stderr


def _log(folder: Path) -> str:
    log = folder / "server.log"
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""
