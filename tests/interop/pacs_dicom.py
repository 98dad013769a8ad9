"""Small, valid DICOM images made with pydicom, as a CT or CR modality would send them.

UIDs are derived from names (``uid("study-a")``) so every run sends the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

SOP_CLASSES = {"CT": CTImageStorage, "CR": ComputedRadiographyImageStorage}


def uid(name: str) -> UID:
    """A deterministic DICOM UID for ``name`` (pydicom's root + a hash of the name)."""
    return generate_uid(entropy_srcs=[name])


@dataclass(frozen=True)
class StudySpec:
    """Who and what: Patient ID (0010,0020) and the study's identifying tags."""

    name: str
    patient_id: str
    patient_name: str = "NGUYEN^VAN AN"
    issuer: str | None = None
    accession: str | None = None
    date: str = "20261120"
    time: str = "093015"
    timezone: str | None = None
    description: str | None = None


def series(
    study: StudySpec,
    number: int,
    count: int,
    modality: str = "CT",
    body_part: str | None = None,
) -> list[Dataset]:
    """``count`` instances of series ``number`` of ``study``."""
    return [_instance(study, number, i + 1, modality, body_part) for i in range(count)]


def _instance(
    study: StudySpec, number: int, instance: int, modality: str, body_part: str | None
) -> Dataset:
    sop_class = SOP_CLASSES[modality]
    sop_uid = uid(f"{study.name}/{number}/{instance}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientID = study.patient_id
    ds.PatientName = study.patient_name
    if study.issuer is not None:
        ds.IssuerOfPatientID = study.issuer
    ds.StudyInstanceUID = uid(study.name)
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    if study.timezone is not None:
        ds.TimezoneOffsetFromUTC = study.timezone
    if study.accession is not None:
        ds.AccessionNumber = study.accession
    if study.description is not None:
        ds.StudyDescription = study.description
    ds.SeriesInstanceUID = uid(f"{study.name}/{number}")
    ds.SeriesNumber = number
    ds.InstanceNumber = instance
    ds.Modality = modality
    if body_part is not None:
        ds.BodyPartExamined = body_part
    ds.Rows = 8
    ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(64, dtype=np.uint16) * instance).tobytes()
    return ds
