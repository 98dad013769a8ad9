"""Clinician workspace services: the bill of a visit and VietQR payment.

- :mod:`~sokhoe.clinic.billing`: the bill of one visit as a FHIR Invoice, and its payment;
- :mod:`~sokhoe.clinic.vietqr`: the national interbank payment QR (NAPAS VietQR).

The insurance share is the claims' own rule table (:mod:`sokhoe.interop.claims.benefit`), so
the bill and the insurance XML cannot disagree.
"""
