"""Read FHIR resources from NDJSON files (FHIR Bulk Data export files) one line at a time.

A view runs over exports far larger than memory, so files are never loaded whole: each line is
parsed and handed on before the next is read. Blank lines are skipped; a line that is not a JSON
object is an error naming ``file:line``. ``.ndjson.gz`` files are read through gzip.

See: https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-output-file-request
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import orjson

from sokhoe.errors import InvalidRequest


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def read_ndjson(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every resource in ``paths``, in file and line order."""
    for path in paths:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise InvalidRequest(f"{path}:{number}: not valid JSON ({e})") from e
                if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
                    raise InvalidRequest(f"{path}:{number}: not a FHIR resource (no resourceType)")
                yield value


def input_files(inputs: Iterable[Path], resource_type: str) -> list[Path]:
    """Expand the inputs: a folder stands for its ``<resource_type>*.ndjson[.gz]`` files.

    Bulk Data exports name files by resource type (``Patient.000.ndjson``), so a view over a
    whole export folder reads only the files of its own type.
    """
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(
                p
                for pattern in (f"{resource_type}*.ndjson", f"{resource_type}*.ndjson.gz")
                for p in item.glob(pattern)
            )
            if not found:
                raise InvalidRequest(f"{item}: no {resource_type}*.ndjson file in this folder")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise InvalidRequest(f"{item}: no such file or folder")
    return files
