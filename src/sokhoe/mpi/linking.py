"""Acting on matches: link the certain ones automatically, queue the probable ones.

Above the *certain* threshold two records are merged without asking (the newer record joins
the one known longest); between *probable* and *certain* a person decides in the review queue;
below, nothing happens. Every automatic decision is a Provenance with the matcher as agent and
the probability as reason, so it can be found and undone (``unmerge``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Conflict
from sokhoe.mpi.links import MATCHER, by_age, merge, queue_review
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Matcher

REVIEW_PER_RECORD = 3
"""Probable candidates queued for one record at most: more is noise to a reviewer."""


@dataclass
class LinkReport:
    merged: list[tuple[str, str]] = field(default_factory=list)
    """(merged record, survivor)."""
    queued: int = 0
    checked: int = 0


def link_patient(
    repo: GuardedRepository, matcher: Matcher, patient_id: str, report: LinkReport | None = None
) -> LinkReport:
    """Match one stored Patient against the others and act on the result."""
    report = report if report is not None else LinkReport()
    current = repo.read("Patient", patient_id)
    content = current.content or {}
    report.checked += 1
    if any(link.get("type") == "replaced-by" for link in content.get("link", [])):
        return report
    candidates = matcher.candidates(content)
    certain = [c for c in candidates if c.grade == CERTAIN]
    if len(certain) == 1:
        older, newer = by_age(repo, patient_id, certain[0].id)
        try:
            merge(
                repo,
                newer,
                older,
                MATCHER,
                f"automatic: match probability {certain[0].probability:.6f}",
            )
        except Conflict:
            return report  # one of them was merged meanwhile; the next pass decides
        report.merged.append((newer, older))
        return report
    # several certain candidates (should not happen) or probable ones: a person decides
    unsure = [c for c in candidates if c.grade in (CERTAIN, PROBABLE)][:REVIEW_PER_RECORD]
    for c in unsure:
        if queue_review(repo, patient_id, c.id, c.probability, c.grade) is not None:
            report.queued += 1
    return report


def link_all(
    repo: GuardedRepository,
    matcher: Matcher,
    patient_ids: Iterable[str],
    progress: Callable[[int], object] | None = None,
) -> LinkReport:
    """:func:`link_patient` for each id (a batch pass after a bulk load)."""
    report = LinkReport()
    for pid in patient_ids:
        link_patient(repo, matcher, pid, report)
        if progress:
            progress(1)
    return report
