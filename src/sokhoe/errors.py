"""Errors that carry a FHIR OperationOutcome.

One handler in the web layer maps them to HTTP (as Medplum's ``OperationOutcomeError``); every
other layer raises them with a precise *what* (``diagnostics``) and *where* (``expression``).
The *what* may be a :class:`~sokhoe.messages.Message`: ``diagnostics`` is then its English text
(what the API answers) and the pages translate the message itself.
See: https://hl7.org/fhir/R4/operationoutcome.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sokhoe.messages import Message, Text


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity, code (issue-type value set), text and FHIRPath."""

    code: str
    diagnostics: str
    expression: str | None = None
    severity: str = "error"
    message: Message | None = field(default=None, compare=False, repr=False)
    """The translatable form of ``diagnostics`` (None: the English text is all there is)."""

    @classmethod
    def of(
        cls, code: str, text: Text, expression: str | None = None, severity: str = "error"
    ) -> Issue:
        """An issue saying ``text``: a Message keeps its translatable form."""
        message = text if isinstance(text, Message) else None
        return cls(code, str(text), expression, severity, message)

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = [self.expression]
        return out


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class FhirError(Exception):
    """Base error: an HTTP status and the issues explaining it."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def _single(status: int, code: str, message: Text, expression: str | None) -> list[Issue]:
    return [Issue.of(code, message, expression)]


class InvalidRequest(FhirError):
    """400: the request itself (parameters, body syntax, bundle shape) is malformed."""

    def __init__(self, message: Text, expression: str | None = None, code: str = "invalid"):
        super().__init__(400, _single(400, code, message, expression))


class InvalidResource(FhirError):
    """422: the resource is well-formed JSON but breaks the R4 structure rules."""

    def __init__(self, issues: list[Issue]):
        super().__init__(422, issues)


class NotFound(FhirError):
    def __init__(self, message: Text):
        super().__init__(404, _single(404, "not-found", message, None))


class Gone(FhirError):
    """410: the resource existed and was deleted (its history is kept)."""

    def __init__(self, message: Text):
        super().__init__(410, _single(410, "deleted", message, None))


class Conflict(FhirError):
    def __init__(self, message: Text, code: str = "conflict"):
        super().__init__(409, _single(409, code, message, None))


class PreconditionFailed(FhirError):
    """412: ``If-Match`` named a stale version, or a conditional matched several resources."""

    def __init__(self, message: Text):
        super().__init__(412, _single(412, "conflict", message, None))


class NotSupported(FhirError):
    def __init__(self, message: Text, status: int = 400):
        super().__init__(status, _single(status, "not-supported", message, None))


class Unauthorized(FhirError):
    """401: no valid credentials; the caller must sign in (``WWW-Authenticate: Bearer``)."""

    def __init__(self, message: Text):
        super().__init__(401, _single(401, "login", message, None))


class Forbidden(FhirError):
    """403: signed in, but the policy refuses this access; the reason says why."""

    def __init__(self, message: Text):
        super().__init__(403, _single(403, "forbidden", message, None))


class TooManyRequests(FhirError):
    """429: a rate limit (one-time codes, sign-in attempts) was reached."""

    def __init__(self, message: Text):
        super().__init__(429, _single(429, "throttled", message, None))
