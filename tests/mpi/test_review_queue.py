"""A registration's probable matches are queued for review in one transaction, once per pair."""

from __future__ import annotations

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.errors import FhirError
from sokhoe.mpi.links import TASK_CODE, queue_review, queue_reviews
from sokhoe.store import MemoryStore
from tests.conftest import BASE


def _tasks(repo: object) -> list[tuple[str, str]]:
    query = repo.parse_query("Task", [("code", f"{TASK_CODE}|review-match")])  # type: ignore[attr-defined]
    return sorted(
        (t.content["focus"]["reference"], t.content["for"]["reference"])
        for t in repo.search(query).matches  # type: ignore[attr-defined]
    )


def test_several_candidates_one_transaction_once_per_pair() -> None:
    repo = platform_repository(MemoryStore(), BASE)
    for pid in ("a", "b", "c"):
        repo.update({"resourceType": "Patient", "id": pid}, "Patient", pid)
    written = queue_reviews(repo, "c", [("a", 0.9, "probable"), ("b", 0.8, "probable")])
    assert len(written) == 2
    assert _tasks(repo) == [("Patient/a", "Patient/c"), ("Patient/b", "Patient/c")]
    assert queue_reviews(repo, "c", [("a", 0.95, "probable")]) == []  # already queued
    assert queue_review(repo, "a", "c", 0.9, "probable") is None  # the pair, either way round
    assert queue_reviews(repo, "c", []) == []


def test_a_refused_candidate_queues_none_of_them() -> None:
    repo = platform_repository(MemoryStore(), BASE)
    for pid in ("a", "b", "c"):
        repo.update({"resourceType": "Patient", "id": pid}, "Patient", pid)
    with pytest.raises(FhirError):
        queue_reviews(repo, "a", [("b", 0.9, "probable"), ("c", 0.9, "")])
    assert _tasks(repo) == []
