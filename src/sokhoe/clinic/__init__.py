"""The clinician workspace's services (*phòng khám*): the facility's queue, check-in at the
desk, the chart, the visit (vital signs, diagnoses, orders), signing, printing and the bill.

Pages (``web/pages/clinic``) and the FHIR operations (``web/signing_api.py``) call these with
the caller's :class:`~sokhoe.access.guard.GuardedRepository`: every read and write here passes
the access door and its audit, so a page can do nothing that the same person could not do
through the FHIR API. Modules by job: ``intake`` (the desk), ``visits`` (the queue), ``chart``,
``drafts``, ``visit`` (closing a visit), ``orders``, ``billing`` (the bill as a FHIR Invoice and
its payment) and ``vietqr`` (the national interbank payment QR); the insurance share is the
claims' own rule table (:mod:`sokhoe.interop.claims.benefit`), so the bill and the insurance XML
cannot disagree; ``declarations`` and ``verification`` the station's check of what residents
declared on the portal (``stations`` which ward a commune station serves). Signing is exported
here:

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
from sokhoe.clinic.signed_visit import SignedVisit, load_visit
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

__all__ = [
    "Amendment",
    "Canonical",
    "Evidence",
    "Pkcs12Signer",
    "SignedVisit",
    "Signer",
    "TotpConfirmation",
    "Verification",
    "amend",
    "canonical_form",
    "load_pkcs12",
    "load_visit",
    "make_development_certificate",
    "sign_visit",
    "verify",
    "verify_signature",
]
