"""No ``patient`` rows that repeat ``subject`` rows (and the other restrictions)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 03:45:00

``patient`` on 36 types is ``subject.where(resolve() is Patient)``: its rows that point at a
Patient whose type the reference names are the ``subject`` rows to a Patient, and go
(``search/unions.py``, restrictions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

RESTRICTIONS = [
    ('Account', 'patient', 'subject', 'Patient'),
    ('Appointment', 'location', 'actor', 'Location'),
    ('Appointment', 'patient', 'actor', 'Patient'),
    ('Appointment', 'practitioner', 'actor', 'Practitioner'),
    ('AppointmentResponse', 'location', 'actor', 'Location'),
    ('AppointmentResponse', 'patient', 'actor', 'Patient'),
    ('AppointmentResponse', 'practitioner', 'actor', 'Practitioner'),
    ('Basic', 'patient', 'subject', 'Patient'),
    ('CarePlan', 'patient', 'subject', 'Patient'),
    ('CareTeam', 'patient', 'subject', 'Patient'),
    ('ChargeItem', 'patient', 'subject', 'Patient'),
    ('ClinicalImpression', 'patient', 'subject', 'Patient'),
    ('Communication', 'patient', 'subject', 'Patient'),
    ('CommunicationRequest', 'patient', 'subject', 'Patient'),
    ('Composition', 'patient', 'subject', 'Patient'),
    ('Condition', 'patient', 'subject', 'Patient'),
    ('Contract', 'patient', 'subject', 'Patient'),
    ('DeviceRequest', 'patient', 'subject', 'Patient'),
    ('DiagnosticReport', 'patient', 'subject', 'Patient'),
    ('DocumentManifest', 'patient', 'subject', 'Patient'),
    ('DocumentReference', 'patient', 'subject', 'Patient'),
    ('Encounter', 'patient', 'subject', 'Patient'),
    ('Encounter', 'practitioner', 'participant', 'Practitioner'),
    ('Flag', 'patient', 'subject', 'Patient'),
    ('Goal', 'patient', 'subject', 'Patient'),
    ('GuidanceResponse', 'patient', 'subject', 'Patient'),
    ('ImagingStudy', 'patient', 'subject', 'Patient'),
    ('Invoice', 'patient', 'subject', 'Patient'),
    ('List', 'patient', 'subject', 'Patient'),
    ('MeasureReport', 'patient', 'subject', 'Patient'),
    ('Media', 'patient', 'subject', 'Patient'),
    ('MedicationAdministration', 'patient', 'subject', 'Patient'),
    ('MedicationDispense', 'patient', 'subject', 'Patient'),
    ('MedicationRequest', 'patient', 'subject', 'Patient'),
    ('MedicationStatement', 'patient', 'subject', 'Patient'),
    ('Observation', 'patient', 'subject', 'Patient'),
    ('Person', 'patient', 'link', 'Patient'),
    ('Person', 'practitioner', 'link', 'Practitioner'),
    ('Person', 'relatedperson', 'link', 'RelatedPerson'),
    ('Procedure', 'patient', 'subject', 'Patient'),
    ('Provenance', 'patient', 'target', 'Patient'),
    ('QuestionnaireResponse', 'patient', 'subject', 'Patient'),
    ('RequestGroup', 'patient', 'subject', 'Patient'),
    ('RiskAssessment', 'patient', 'subject', 'Patient'),
    ('ServiceRequest', 'patient', 'subject', 'Patient'),
    ('Specimen', 'patient', 'subject', 'Patient'),
    ('Task', 'patient', 'subject', 'Patient'),
]
"""(type, parameter, the parameter it restricts, target type), as ``search/unions.py`` found
them in R4 when this was written (a test keeps them equal)."""


def upgrade() -> None:
    delete = sa.text(
        "DELETE FROM sp_reference WHERE resource_type = :t AND param = :p AND target_type = :x"
    )
    for rtype, code, _, target in RESTRICTIONS:
        op.execute(delete.bindparams(t=rtype, p=code, x=target))


def downgrade() -> None:
    copy = sa.text(
        "INSERT INTO sp_reference (resource_type, resource_pk, patient_id, param, target_type, "
        "target_id, url) SELECT resource_type, resource_pk, patient_id, :p, target_type, "
        "target_id, url FROM sp_reference WHERE resource_type = :t AND param = :w "
        "AND target_type = :x"
    )
    for rtype, code, within, target in RESTRICTIONS:
        op.execute(copy.bindparams(t=rtype, p=code, w=within, x=target))
