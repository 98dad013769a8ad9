"""Who an import acts as, and holding its audit records until its transaction ends.

An import is a connected system of the facility (``import:{code}``) with just the scopes it
needs. The guard audits each access decision as it makes it; inside an open write transaction
an audit write would wait on that transaction (SQLite allows one writer; the audit chain of
PostgreSQL takes a lock), so the importer hands the guard a :class:`DeferredAuditor` and
flushes it once the row's or the file's transaction is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sokhoe.access.guard import Auditor
from sokhoe.access.principal import Principal, system_principal

SCOPES = frozenset(
    {
        "system/Patient.cru",
        "system/Encounter.cru",
        "system/Condition.cru",
        "system/Organization.rs",
    }
)


def import_principal(facility: str, name: str | None = None) -> Principal:
    """The facility's import job as a connected system."""
    return system_principal(
        f"import:{facility}", f"Legacy import — {name or facility}", SCOPES, facility
    )


@dataclass
class DeferredAuditor:
    """An :class:`~sokhoe.access.guard.Auditor` that keeps records until :meth:`flush`."""

    inner: Auditor | None
    pending: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def record(
        self,
        principal: Principal | None,
        action: str,
        outcome: str,
        *,
        patient_ids: Sequence[str] = (),
        entities: Sequence[str] = (),
        query: str | None = None,
        reason: str | None = None,
        source: str | None = None,
        when: datetime | None = None,
    ) -> int:
        kwargs = {
            "patient_ids": patient_ids,
            "entities": entities,
            "query": query,
            "reason": reason,
            "source": source,
            "when": when or datetime.now().astimezone(),
        }
        self.pending.append(((principal, action, outcome), kwargs))
        return 0

    def flush(self) -> None:
        """Write what was recorded, with the time each decision was made."""
        pending, self.pending = self.pending, []
        if self.inner is not None:
            for args, kwargs in pending:
                self.inner.record(*args, **kwargs)
