"""The clinician workspace's services: the facility's queue, check-in at the desk, the chart,
the visit (vital signs, diagnoses, orders), signing, printing and the bill.

Pages (``web/pages/clinic``) and FHIR operations call these with the caller's guarded
repository: every read and write here passes the access door and its audit, so a page can do
nothing that the same person could not do through the FHIR API.
"""
