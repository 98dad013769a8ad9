"""The CapabilityStatement, generated from the registries the server really uses.

Every resource type listed is one the validator knows and the store accepts; every search
parameter is one the indexer extracts; every operation is one the router serves. Nothing is
claimed that is not wired.
See: https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sokhoe import __version__
from sokhoe.fhir.definitions import FHIR_VERSION, resource_types
from sokhoe.fhir.searchparams import registry

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


def _reference_params(rtype: str) -> list[str]:
    return sorted(
        f"{rtype}:{sp.code}" for sp in registry().supported(rtype) if sp.type == "reference"
    )


HL7_OPERATIONS = frozenset({"everything", "match", "lookup", "expand", "validate-code"})
"""Operations the R4 specification defines; the others are this platform's own."""
RESOURCE_OPERATIONS = frozenset({"validate"})
"""Operations the R4 specification defines on every resource type (``Resource-validate``)."""


def _operation_definition(rtype: str, op: str) -> str:
    if op in RESOURCE_OPERATIONS:
        return f"http://hl7.org/fhir/OperationDefinition/Resource-{op}"
    base = "http://hl7.org/fhir" if op in HL7_OPERATIONS else "https://fhir.sokhoe.vn"
    return f"{base}/OperationDefinition/{rtype}-{op}"


def _security(base_url: str, cors: bool) -> dict[str, Any]:
    """How a client signs in: SMART on FHIR (discovery at ``.well-known/smart-configuration``,
    which lists the endpoints); ``cors`` when the server answers browsers of allowed origins.
    See: https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.security
    """
    root = base_url.removesuffix("/").removesuffix("/fhir")
    return {
        "cors": cors,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 bearer tokens, SMART on FHIR",
            }
        ],
        "description": (
            "Every request but this statement and SMART discovery needs a bearer token. "
            f"Connected systems: client credentials at {root}/auth/token, with a client "
            "secret or a signed JWT assertion (SMART Backend Services, RS384/ES384). "
            "Apps a citizen or a clinician connects: SMART App Launch, standalone "
            f"(authorization code with PKCE S256 at {root}/auth/authorize, patient/ and user/ "
            "scopes, launch/patient, openid fhirUser, refresh tokens). "
            f"Endpoints and scopes: {base_url.rstrip('/')}/.well-known/smart-configuration. "
            "What a caller may read also depends on its facility's care relationships, the "
            "patient's consent and restrictions, and break-the-glass, all audited."
        ),
    }


def capability_statement(
    base_url: str,
    operations: Mapping[str, Sequence[str]],
    published: str,
    *,
    cors: bool = False,
) -> dict[str, Any]:
    """``operations``: resource type -> names of type/instance operations it supports (``*``
    those of every type, ``""`` the system-level ones)."""
    reg = registry()
    resources = []
    for rtype in sorted(resource_types()):
        params = [
            {
                "name": sp.code,
                "definition": sp.url,
                "type": sp.type,
                **({"documentation": sp.description} if sp.description else {}),
            }
            for sp in reg.supported(rtype)
        ]
        entry: dict[str, Any] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": c} for c in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": ["*", *_reference_params(rtype)],
            "searchParam": params,
        }
        from sokhoe.ig.profiles import profile_for

        supported = profile_for(rtype)
        if supported is not None:
            entry["supportedProfile"] = [supported]
        ops = [*operations.get(rtype, []), *operations.get("*", [])]
        if ops:
            entry["operation"] = [
                {"name": op, "definition": _operation_definition(rtype, op)} for op in ops
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "sokhoe",
        "kind": "instance",
        "software": {"name": "sokhoe", "version": __version__},
        "implementation": {"description": "sokhoe shared health record", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(base_url, cors),
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                    {"code": "search-system"},
                ],
                "searchParam": [
                    {"name": sp.code, "definition": sp.url, "type": sp.type}
                    for sp in reg.supported("Resource")
                ],
                **(
                    {
                        "operation": [
                            {"name": op, "definition": _operation_definition("Resource", op)}
                            for op in operations[""]
                        ]
                    }
                    if operations.get("")
                    else {}
                ),
            }
        ],
    }
