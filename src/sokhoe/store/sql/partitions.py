"""PostgreSQL tables hash-partitioned by patient (``SOKHOE_PG_PARTITIONS=N``): what the store
does differently on them.

Migration 0021 creates ``resource``, ``resource_history`` and the seven ``sp_*`` index tables
of a new PostgreSQL database ``PARTITION BY HASH (patient_id)`` with N partitions. Every row
already carries the patient whose compartment it belongs to (DESIGN.md, "Patient compartment
everywhere"), so a patient's ``$everything`` and a compartment search read one partition;
shared resources (Organization, Practitioner…) have no patient, and hash partitioning puts
every NULL key in one partition.

PostgreSQL requires a unique index on a partitioned table to contain the partition key, and a
primary key's columns to be NOT NULL, so ``resource`` cannot keep its primary key on
``(resource_type, id)``. One row per ``(resource_type, id)`` is kept instead by
:data:`resource_key`, a narrow unpartitioned table whose primary key is that pair: a create
inserts its key in the same transaction, so two concurrent creates of the same id meet on
that key exactly as they met on ``resource``'s primary key before (the second waits for the
first, then fails with a unique violation that the store reports as a conflict). A
transaction-scoped advisory lock would do the same without the table, but a bulk load
creates thousands of resources per transaction and each lock takes a slot of PostgreSQL's
shared lock table (``max_locks_per_transaction`` × connections, 6,400 by default).
``resource`` and ``resource_history`` keep plain (non-unique) indexes on their former keys:
a read by id probes each partition's index once.

See: https://www.postgresql.org/docs/current/ddl-partitioning.html
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Connection, MetaData, String, Table, delete, insert, text
from sqlalchemy.exc import DBAPIError

from sokhoe.store.ports import WriteItem

_own = MetaData()
"""Not the store's ``schema.metadata``: the table exists only in a partitioned database."""

resource_key = Table(
    "resource_key",
    _own,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
)
"""One row per resource ever created and not purged: the uniqueness ``resource`` cannot hold."""

PARTITIONED_TABLES = (
    "resource",
    "resource_history",
    "sp_string",
    "sp_token",
    "sp_date",
    "sp_reference",
    "sp_quantity",
    "sp_number",
    "sp_uri",
)


def is_partitioned(conn: Connection) -> bool:
    """Whether this database's ``resource`` table is partitioned (PostgreSQL catalogue)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('resource')")
    ).first()
    return found is not None


def partitions_of(conn: Connection, table: str) -> list[str]:
    """The partitions of ``table``, by name (empty for a plain table)."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
        ),
        {"t": table},
    )
    return [str(r[0]) for r in rows]


def claim(conn: Connection, items: Sequence[WriteItem]) -> None:
    """Insert the keys of new resources; a key taken already (a create of the same id that
    committed, or is committing, in another transaction) raises ``IntegrityError``."""
    if items:
        conn.execute(
            insert(resource_key), [{"resource_type": i.resource_type, "id": i.id} for i in items]
        )


def release(conn: Connection, resource_type: str, id: str) -> None:
    """Give a purged resource's key back (its id may be created again)."""
    k = resource_key.c
    conn.execute(delete(resource_key).where(k.resource_type == resource_type, k.id == id))


def moved_concurrently(exc: DBAPIError) -> bool:
    """PostgreSQL's error for a row another transaction moved to another partition while this
    one waited to lock it (an update that changed its patient): SQLSTATE 40001, which on a
    plain table would have been a lost-update check that failed, i.e. a conflict."""
    return getattr(exc.orig, "sqlstate", None) == "40001"
