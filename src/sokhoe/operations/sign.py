"""``Encounter/$sign`` and ``Provenance/$verify-signature``: the signing port over FHIR.

``$sign`` is made by a clinician signed in as themself (a staff account: doctor, nurse or
facility administrator of the facility the visit belongs to) with ``method`` ``totp`` (and
``code``, the 6 digits of their authenticator app) or ``pkcs12`` (their certificate, configured
on the server: ``SOKHOE_SIGNING_P12_DIR/<username>.p12`` opened with
``SOKHOE_SIGNING_P12_PASSWORD``). It answers the signature Provenance. ``$verify-signature``
answers a Parameters: ``valid``, each ``reason`` it is not, ``note``s, the hashes and targets.
The rules are in ``clinic/signing.py`` and ``clinic/verify.py``.
See: https://hl7.org/fhir/R4/operationdefinition.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.signing import Pkcs12Signer, Signer, TotpConfirmation, sign_visit
from sokhoe.clinic.verify import verify_signature
from sokhoe.config import Settings
from sokhoe.errors import FhirError, Forbidden, InvalidRequest, Issue, NotSupported
from sokhoe.fhir.parameters import parameters_by_name, string_parameter


def _definition(
    rtype: str, code: str, params: list[tuple[str, str, str, int]], out: str
) -> dict[str, Any]:
    return {
        "resourceType": "OperationDefinition",
        "id": f"{rtype}-{code}",
        "url": f"https://fhir.sokhoe.vn/OperationDefinition/{rtype}-{code}",
        "name": code.title().replace("-", ""),
        "status": "active",
        "kind": "operation",
        "code": code,
        "resource": [rtype],
        "system": False,
        "type": False,
        "instance": True,
        "parameter": [
            {"name": n, "use": use, "min": m, "max": "1" if n != "reason" else "*", "type": t}
            for n, use, t, m in params
        ]
        + [{"name": "return", "use": "out", "min": 1, "max": "1", "type": out}],
    }


SIGN_DEFINITION = _definition(
    "Encounter",
    "sign",
    [("method", "in", "code", 1), ("code", "in", "string", 0)],
    "Provenance",
)
VERIFY_DEFINITION = _definition("Provenance", "verify-signature", [], "Parameters")


def pkcs12_signer(repo: GuardedRepository, settings: Settings) -> Signer:
    """The caller's own certificate, as the server is configured to hold it."""
    folder, password = settings.signing_p12_dir, settings.signing_p12_password
    if folder is None or password is None:
        raise NotSupported(
            "Signing with a certificate is not configured on this server "
            "(SOKHOE_SIGNING_P12_DIR and SOKHOE_SIGNING_P12_PASSWORD); use method totp"
        )
    username = repo.principal.subject
    path = Path(folder) / f"{username}.p12"
    if path.parent != Path(folder) or "/" in username or "\\" in username:
        raise Forbidden("No certificate can be looked up for this account")
    if not path.is_file():
        raise Forbidden(f"No signing certificate is configured for {username}")
    try:
        return Pkcs12Signer.from_file(path, password.get_secret_value(), account=username)
    except ValueError as exc:  # the server's configuration, not the caller's request
        raise FhirError(500, [Issue("exception", f"The signing certificate: {exc}")]) from exc


def run_sign(
    repo: GuardedRepository, encounter_id: str, body: Any, settings: Settings
) -> dict[str, Any]:
    """``POST /fhir/Encounter/{id}/$sign``: the Provenance of the new signature."""
    principal = repo.principal
    if principal.kind != "staff":
        raise Forbidden("$sign is made by a clinician signed in with their own staff account")
    params = parameters_by_name(body)
    method = string_parameter(params, "method")
    signer: Signer
    if method == "totp":
        code = string_parameter(params, "code")
        if code is None:
            raise InvalidRequest("method totp needs the 'code' of your authenticator app", "code")
        signer = TotpConfirmation(repo.auditor.engine, principal.subject, code)
    elif method == "pkcs12":
        signer = pkcs12_signer(repo, settings)
    else:
        raise InvalidRequest("Parameter 'method' must be 'totp' or 'pkcs12'", "method")
    return sign_visit(repo, encounter_id, signer)


def run_verify(repo: GuardedRepository, provenance_id: str) -> dict[str, Any]:
    """``Provenance/{id}/$verify-signature``: a Parameters with ``valid`` and the reasons."""
    return verify_signature(repo, provenance_id).to_parameters()
