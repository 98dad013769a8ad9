"""A throw-away Orthanc PACS for the tests: its own config, storage, ports and user.

No Orthanc service is assumed to run; the Debian packages ``orthanc`` and ``orthanc-dicomweb``
must be installed (``make test`` installs them through scripts/system-deps.sh).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx2
from pydicom.dataset import Dataset
from pynetdicom import AE

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER = "sokhoe-test"
PASSWORD = "pacs-secret-0"
AET = "SOKHOEPACS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancServer:
    """Orthanc on loopback with authentication, DICOMweb and a short ``StableAge``."""

    def __init__(self, stable_age: int = 1) -> None:
        for needed in (ORTHANC, DICOMWEB_PLUGIN):
            if not needed.exists():
                raise RuntimeError(
                    f"{needed} is missing: install the Debian packages orthanc and "
                    "orthanc-dicomweb (scripts/system-deps.sh, run by `make test`)"
                )
        self.dir = Path(tempfile.mkdtemp(prefix="sokhoe-orthanc-"))
        self.http_port = _free_port()
        self.dicom_port = _free_port()
        self.stable_age = stable_age
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def http(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, auth=httpx2.BasicAuth(USER, PASSWORD), timeout=10)

    def start(self) -> None:
        config = {
            "Name": "sokhoe-test-pacs",
            "StorageDirectory": str(self.dir / "db"),
            "IndexDirectory": str(self.dir / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": AET,
            "DicomCheckCalledAet": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StableAge": self.stable_age,
            "ConcurrentJobs": 1,
        }
        path = self.dir / "orthanc.json"
        path.write_text(json.dumps(config, indent=1))
        self._log = (self.dir / "orthanc.log").open("wb")
        self.process = subprocess.Popen(
            [str(ORTHANC), str(path)], stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir
        )
        deadline = time.monotonic() + 30
        with self.http() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"Orthanc exited: {self.log_tail()}")
                try:
                    if http.get("/system").status_code == 200:
                        return
                except httpx2.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer /system within 30 s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.dir / "orthanc.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers for tests ---------------------------------------------------------------
    def clear(self) -> None:
        """Delete every study (and the change log), so a test starts from an empty PACS."""
        with self.http() as http:
            for study in http.get("/studies").json():
                http.delete(f"/studies/{study}").raise_for_status()
            http.delete("/changes").raise_for_status()

    def c_store(self, datasets: Sequence[Dataset], calling_aet: str = "CT01") -> None:
        """Send ``datasets`` over DICOM C-STORE, as a modality does."""
        ae = AE(ae_title=calling_aet)
        for ds in datasets:
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", self.dicom_port, ae_title=AET)
        if not assoc.is_established:
            raise RuntimeError("Orthanc refused the DICOM association")
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if status.get("Status") != 0:
                    raise RuntimeError(f"C-STORE of {ds.SOPInstanceUID} failed: {status}")
        finally:
            assoc.release()
