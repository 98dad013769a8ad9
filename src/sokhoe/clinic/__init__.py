"""The clinician workspace's services (*phòng khám*): today, signing a visit's record.

Pages (``web/pages/clinic``, later) and the FHIR operations (``web/signing_api.py``) call the
same functions, each with the caller's :class:`~sokhoe.access.guard.GuardedRepository`:

- :func:`load_visit` — what a signature of a visit would cover (the Encounter and the
  resources written for it), to show before signing;
- :func:`sign_visit` — sign it with a :class:`Signer`: :class:`TotpConfirmation` (the
  clinician's authenticator code) or :class:`Pkcs12Signer` (their certificate); a
  remote-signing service is another ``Signer`` (it is given a digest, not the document);
- :func:`amend` — replace a signed version and sign the visit again;
- :func:`verify_signature` / :func:`verify` — check a signature Provenance;
- :func:`make_development_certificate` — a self-signed PKCS#12 for demos and tests.

Circular 13/2025/TT-BYT: signed content is frozen (the access door refuses to replace it) and a
correction is an amendment, signed again; both signatures stay readable.
"""

from sokhoe.clinic.canonical import Canonical, canonical_form
from sokhoe.clinic.certificates import load_pkcs12, make_development_certificate
from sokhoe.clinic.signing import (
    Amendment,
    Evidence,
    Pkcs12Signer,
    Signer,
    TotpConfirmation,
    amend,
    sign_visit,
)
from sokhoe.clinic.verify import Verification, verify, verify_signature
from sokhoe.clinic.signed_visit import SignedVisit, load_visit

__all__ = [
    "Amendment",
    "Canonical",
    "Evidence",
    "Pkcs12Signer",
    "Signer",
    "TotpConfirmation",
    "Verification",
    "SignedVisit",
    "amend",
    "canonical_form",
    "load_pkcs12",
    "load_visit",
    "make_development_certificate",
    "sign_visit",
    "verify",
    "verify_signature",
]
