"""The patient index's blocking keys for the Patients already stored

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 11:30:00

``match-key`` (``fhir/platform_searchparams.py``) is written with every Patient from this
version on; ``$match`` finds its candidates by it alone, so a Patient stored before would no
longer be found by name and birth date. This computes the keys of every current Patient with
the function the writer uses (``mpi/keys.py``, as it is when the migration runs: a later change
to the keys comes with its own migration), a page of Patients at a time.

The downgrade deletes the rows (the older code neither writes nor reads them).
"""

from __future__ import annotations

from hashlib import blake2b

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

PAGE = 2000
"""Patients read, keyed and inserted at a time."""


def _pid() -> int:
    """``identity.param_id("Patient", "match-key")``, as it is today."""
    digest = blake2b(b"Patient.match-key", digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def upgrade() -> None:
    from sokhoe.mpi.keys import match_keys
    from sokhoe.store.sql.content import decode, load_dictionaries
    from sokhoe.store.sql.schema import content_dictionary

    conn = op.get_bind()
    by_patient = conn.dialect.name == "postgresql"  # as the writer fills ``patient_id``
    load_dictionaries(conn, content_dictionary)
    pid = _pid()
    page = sa.text(
        "SELECT pk, patient_id, content FROM resource WHERE resource_type = 'Patient' "
        "AND NOT deleted AND content IS NOT NULL AND pk > :last ORDER BY pk LIMIT :n"
    )
    insert = sa.text(
        "INSERT INTO sp_string (resource_pk, patient_id, pid, norm, exact) "
        "VALUES (:pk, :patient, :pid, :key, :key)"
    )
    last = -1
    while True:
        rows = conn.execute(page, {"last": last, "n": PAGE}).all()
        if not rows:
            break
        last = rows[-1].pk
        keyed = [
            {"pk": row.pk, "patient": row.patient_id if by_patient else None, "pid": pid, "key": k}
            for row in rows
            for k in match_keys(decode(bytes(row.content)))
        ]
        if keyed:
            conn.execute(insert, keyed)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM sp_string WHERE pid = :pid").bindparams(pid=_pid()))
