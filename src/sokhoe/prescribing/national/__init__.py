"""The connection to the national prescription system (Decision 808/QĐ-BYT).

``mapping`` turns FHIR into the national JSON (unconfirmed fields listed there), ``client``
speaks its HTTP API (tokens cached in the database), ``outbox`` queues each issued
prescription and each sale in the transaction that records it and delivers them: nothing
lost, nothing sent twice, a refusal left as a ``Task`` for the facility.
"""

from sokhoe.prescribing.national.client import (
    NationalClient,
    NationalError,
    NotConfigured,
    Refused,
    SignInRefused,
    TokenCache,
    Transient,
)
from sokhoe.prescribing.national.mapping import (
    FIELDS,
    PRESCRIPTION_CODE_SYSTEM,
    DispensingSources,
    PrescriptionSources,
    dispensing_payload,
    national_code,
    prescription_payload,
    unconfirmed,
)
from sokhoe.prescribing.national.outbox import (
    DISPENSING,
    PRESCRIPTION,
    TASK_SYSTEM,
    Backoff,
    Deliverer,
    Message,
    PeriodicDelivery,
    Report,
    dispensing_message,
    enqueue,
    prescription_message,
)
from sokhoe.prescribing.national.runtime import build_deliverer

__all__ = [
    "DISPENSING",
    "FIELDS",
    "PRESCRIPTION",
    "PRESCRIPTION_CODE_SYSTEM",
    "TASK_SYSTEM",
    "Backoff",
    "Deliverer",
    "DispensingSources",
    "Message",
    "NationalClient",
    "NationalError",
    "NotConfigured",
    "PeriodicDelivery",
    "PrescriptionSources",
    "Refused",
    "Report",
    "SignInRefused",
    "TokenCache",
    "Transient",
    "build_deliverer",
    "dispensing_message",
    "dispensing_payload",
    "enqueue",
    "national_code",
    "prescription_message",
    "prescription_payload",
    "unconfirmed",
]
