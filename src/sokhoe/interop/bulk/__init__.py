"""FHIR Bulk Data Access: asynchronous ``$export`` and streaming NDJSON ``$import``.

- ``export.py``: the job runner (store stream -> access check -> NDJSON files, manifest).
- ``jobs.py``: job state in the database (``bulk_job``), so any server process can answer.
- ``service.py``: the worker pool one process keeps, and owner-only status/files/cancel.
- ``ndjson_import.py``: streamed, batched, per-line-checked ``$import``.
- ``bench.py``: ``python -m sokhoe.interop.bulk.bench`` (export resources/s with a floor).

See: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from sokhoe.interop.bulk.export import ExportOptions, ExportRequest, run_export
from sokhoe.interop.bulk.jobs import BulkJob, BulkJobs
from sokhoe.interop.bulk.ndjson_import import ImportReport, NdjsonImporter, import_stream
from sokhoe.interop.bulk.service import BulkExportService

__all__ = [
    "BulkExportService",
    "BulkJob",
    "BulkJobs",
    "ExportOptions",
    "ExportRequest",
    "ImportReport",
    "NdjsonImporter",
    "import_stream",
    "run_export",
]
