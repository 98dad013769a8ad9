"""What an import did, row by row, in the words of the spreadsheet the user holds.

Row numbers are the spreadsheet's (the header is row 1 unless the mapping says otherwise), so
a clerk can open the file and fix exactly the lines listed. The report is written as CSV (for
the clerk, opens in Excel; UTF-8 with a BOM so Excel shows Vietnamese) or JSON (for scripts).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["created", "updated", "unchanged", "error"]
STATUSES: tuple[Status, ...] = ("created", "updated", "unchanged", "error")


@dataclass
class RowResult:
    row: int
    status: Status
    key: str = ""
    """The row's business key (record number, visit number) as the file has it."""
    resources: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    file: str
    kind: str
    facility: str
    dry_run: bool
    all_or_nothing: bool
    rows: list[RowResult] = field(default_factory=list)
    committed: bool = False
    """Whether the writes were kept: false for a dry run and for an all-or-nothing import
    with an error (the statuses of good rows then say what *would* have happened)."""
    fatal: str | None = None
    """A problem with the whole file (mapping, header, unknown facility): no row was read."""
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def totals(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for r in self.rows:
            counts[r.status] += 1
        return {"rows": len(self.rows), **counts}

    @property
    def failed(self) -> bool:
        return self.fatal is not None or any(r.status == "error" for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"] = self.totals
        return data

    def summary(self) -> str:
        """A few lines for the terminal: totals, then the first errors."""
        t = self.totals
        if self.dry_run:
            mode = "dry run, nothing written"
        elif self.fatal or not self.committed:
            mode = "nothing written" if self.fatal else "rolled back, nothing written"
        else:
            mode = "one transaction, committed" if self.all_or_nothing else "row by row"
        lines = [f"{self.file}: {self.kind} for facility {self.facility} ({mode})"]
        if self.fatal:
            lines.append(f"  error: {self.fatal}")
            return "\n".join(lines)
        lines.append(
            f"  {t['rows']} rows: {t['created']} created, {t['updated']} updated, "
            f"{t['unchanged']} unchanged, {t['error']} with errors"
        )
        errors = [r for r in self.rows if r.status == "error"]
        for r in errors[:20]:
            lines.append(f"  row {r.row}: {'; '.join(r.messages)}")
        if len(errors) > 20:
            lines.append(f"  … and {len(errors) - 20} more rows with errors (see the report)")
        return "\n".join(lines)

    def write(self, path: Path) -> Path:
        """Write as JSON (``.json``) or CSV (anything else); returns the path written."""
        if path.suffix.lower() == ".json":
            text = json.dumps(self.as_dict(), ensure_ascii=False, indent=2) + "\n"
            path.write_text(text, encoding="utf-8")
            return path
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            out = csv.writer(f)
            out.writerow(["row", "status", "key", "resources", "messages", "warnings"])
            if self.fatal:
                out.writerow(["", "error", "", "", self.fatal, ""])
            for r in self.rows:
                out.writerow(
                    [
                        r.row,
                        r.status,
                        r.key,
                        " ".join(r.resources),
                        " | ".join(r.messages),
                        " | ".join(r.warnings),
                    ]
                )
        return path
