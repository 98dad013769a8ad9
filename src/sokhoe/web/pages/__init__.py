"""The platform's pages for people (Vietnamese first): ``clinic/`` for clinicians and desks.

Pages are an adapter like the FHIR API: routes and templates here, the work in services
(``sokhoe.clinic``) that take the caller's guarded repository.
"""
