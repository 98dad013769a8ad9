"""What one ``sokhoe sync`` run did, for the summary line and for tests."""

from __future__ import annotations

from dataclasses import dataclass, field


class SyncInterrupted(Exception):
    """Upstream went away mid-sync; everything done so far is recorded."""

    def __init__(self, phase: str, done: int, total: int, cause: str) -> None:
        super().__init__(
            f"connection lost during {phase} after {done} of {total}; "
            f"run sync again — nothing is lost ({cause})"
        )
        self.phase = phase
        self.done = done
        self.total = total


@dataclass
class SyncReport:
    """Counts per outcome; ``failed`` lists what upstream refused, with its reason."""

    pushed: int = 0
    pulled: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    """New conflicts found in this run (each has a review Task)."""
    held: int = 0
    """Skipped because an earlier conflict still waits for review."""
    failed: list[str] = field(default_factory=list)
    open_conflicts: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, id, Task id) waiting for review after this run."""

    @property
    def transferred(self) -> int:
        return self.pushed + self.pulled + self.deleted

    def summary(self) -> str:
        text = (
            f"pushed {self.pushed}, pulled {self.pulled}, deleted {self.deleted}, "
            f"unchanged {self.unchanged}, conflicts {self.conflicts}, held {self.held}, "
            f"failed {len(self.failed)}"
        )
        for rtype, rid, task in self.open_conflicts:
            text += f"\nconflict: {rtype}/{rid} waits for review in Task/{task}"
        for failure in self.failed:
            text += f"\nfailed: {failure}"
        return text


__all__ = ["SyncInterrupted", "SyncReport"]
