"""DICOM imaging: follow a facility's Orthanc PACS and record each study as an ImagingStudy
(the images stay in the PACS; the record points to its DICOMweb endpoint)."""

from __future__ import annotations

from sokhoe.interop.dicom.imaging import PacsSeries, PacsStudy, imaging_study, pacs_endpoint
from sokhoe.interop.dicom.orthanc import OrthancClient, OrthancError
from sokhoe.interop.dicom.watch import PacsWatcher, PollReport, pacs_principal

__all__ = [
    "OrthancClient",
    "OrthancError",
    "PacsSeries",
    "PacsStudy",
    "PacsWatcher",
    "PollReport",
    "imaging_study",
    "pacs_endpoint",
    "pacs_principal",
]
