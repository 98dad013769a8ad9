"""A small client of the Orthanc REST API: the calls the PACS watcher needs, nothing more.

Orthanc numbers every change it makes (a new instance, a study that became *stable*…) in a
change log read with ``GET /changes?since=N&limit=M``; a study is *stable* once no instance has
arrived for ``StableAge`` seconds, which is when its series and instance counts are final
enough to publish. The watcher follows that log from a saved sequence number.
See: https://orthanc.uclouvain.be/book/users/rest.html#tracking-changes
and https://orthanc.uclouvain.be/api/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

STABLE_STUDY = "StableStudy"
"""The change type that says a study is complete (no new instance for ``StableAge`` s)."""


class OrthancError(Exception):
    """Orthanc could not be reached or answered with an error (the poll is retried later)."""


@dataclass(frozen=True)
class Change:
    """One entry of Orthanc's change log."""

    seq: int
    change_type: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    """A page of the change log: ``last`` is the sequence to continue from; ``done`` says
    there is nothing after it yet."""

    changes: tuple[Change, ...]
    last: int
    done: bool


class OrthancClient:
    """Orthanc's REST API at ``url`` with HTTP basic authentication and timeouts.

    ``url`` is the server root (``http://pacs.example.vn:8042``), not the DICOMweb root.
    """

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        auth = httpx2.BasicAuth(user, password or "") if user else None
        self._http = httpx2.Client(
            base_url=self.url,
            auth=auth,
            timeout=httpx2.Timeout(timeout),
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OrthancClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        """GET a JSON document; None when Orthanc answers 404 (e.g. a study deleted since)."""
        try:
            response = self._http.get(path, params=params)
        except httpx2.HTTPError as exc:
            raise OrthancError(f"Orthanc at {self.url} is unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise OrthancError(f"Orthanc at {self.url} refused the credentials ({path})")
        if response.status_code >= 400:
            raise OrthancError(
                f"Orthanc at {self.url} answered {response.status_code} to GET {path}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise OrthancError(f"Orthanc answered GET {path} with non-JSON content") from exc

    # -- calls -----------------------------------------------------------------------
    def system(self) -> dict[str, Any]:
        """``/system``: name, version, DICOM AET and ports (also a credentials check)."""
        found = self._get("/system")
        if not isinstance(found, dict):
            raise OrthancError(f"Orthanc at {self.url} has no /system")
        return found

    def changes(self, since: int, limit: int = 100) -> ChangesPage:
        """The changes after sequence number ``since``, at most ``limit`` of them."""
        found = self._get("/changes", {"since": since, "limit": limit})
        if not isinstance(found, dict):
            raise OrthancError(f"Orthanc at {self.url} has no /changes")
        changes = tuple(
            Change(
                seq=int(c["Seq"]),
                change_type=str(c["ChangeType"]),
                resource_type=str(c.get("ResourceType", "")),
                resource_id=str(c["ID"]),
            )
            for c in found.get("Changes", [])
        )
        return ChangesPage(changes, int(found.get("Last", since)), bool(found.get("Done", True)))

    def study(self, study_id: str) -> dict[str, Any] | None:
        """``/studies/{id}``: ``MainDicomTags``, ``PatientMainDicomTags``, series ids."""
        found = self._get(f"/studies/{study_id}")
        return found if isinstance(found, dict) else None

    def study_series(self, study_id: str) -> list[dict[str, Any]] | None:
        """``/studies/{id}/series``: each series with its ``MainDicomTags`` (modality,
        number, body part) and the ids of its ``Instances``."""
        found = self._get(f"/studies/{study_id}/series")
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else None

    def series(self, series_id: str) -> dict[str, Any] | None:
        """``/series/{id}``."""
        found = self._get(f"/series/{series_id}")
        return found if isinstance(found, dict) else None

    def instance_tag(self, instance_id: str, tag: str) -> str | None:
        """The value of one tag (``"0010-0021"``) of an instance, or None when absent.

        Needed for tags Orthanc 1.10 does not index among the main DICOM tags (Issuer of
        Patient ID, Timezone Offset From UTC); reads the one instance file only.
        """
        path = f"/instances/{instance_id}/content/{tag}"
        try:
            response = self._http.get(path, headers={"Accept": "*/*"})
        except httpx2.HTTPError as exc:
            raise OrthancError(f"Orthanc at {self.url} is unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise OrthancError(f"Orthanc answered {response.status_code} to GET {path}")
        value = response.content.decode("utf-8", errors="replace").strip("\x00 ")
        return value or None


__all__ = [
    "STABLE_STUDY",
    "Change",
    "ChangesPage",
    "OrthancClient",
    "OrthancError",
]
