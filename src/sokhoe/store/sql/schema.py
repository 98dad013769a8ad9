"""Tables of the SQL store (SQLAlchemy Core). Alembic migrations create them.

Every table carries ``patient_id``, the id of the Patient whose compartment the row belongs to
(None for shared resources such as Organization). That one column is what lets PostgreSQL
partition, or Citus distribute, the whole store by patient, and makes ``$everything`` a single
index range.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
)

from sokhoe.store.sql.content import CompressedJson

metadata = MetaData()

ID = 64
"""FHIR ids are at most 64 characters."""

Pk = BigInteger().with_variant(Integer(), "sqlite")
"""A resource's surrogate key (SQLite's INTEGER is already 64-bit)."""

resource_pk_seq = Sequence("resource_pk_seq", metadata=metadata)
"""PostgreSQL hands out surrogate keys from this; SQLite's single writer counts from max(pk)."""

resource = Table(
    "resource",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("patient_id", String(ID)),
    Column("content", CompressedJson),
    Column("pk", Pk, nullable=False),
    Column("owner", String(16)),
    Column("labels", String(64)),
    Index("ux_resource_pk", "pk", unique=True),
    Index("ix_resource_patient", "patient_id", "resource_type"),
    Index("ix_resource_updated", "last_updated"),
    Index("ix_resource_owner", "owner", "resource_type"),
)
"""``owner``: the facility whose caller created the resource (what it may always read back);
``labels``: the sensitive categories of the current version (``HIV,PSY``), so a patient's
restriction is part of the SQL of every read (``store/sql/confine.py``); ``content``: the
current version's JSON, compressed (``store/sql/content.py``)."""

resource_history = Table(
    "resource_history",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=False),
    Column("patient_id", String(ID)),
    Column("content", CompressedJson),
    Column("owner", String(16)),
    Column("labels", String(64)),
    Index("ix_history_updated", "last_updated"),
    Index("ix_history_type_updated", "resource_type", "last_updated"),
)
"""Every version. The JSON is stored once: ``content`` is NULL on the row of the current
version, whose JSON is in ``resource`` (HAPI too keeps one copy); an update moves the replaced
version's JSON here."""

content_dictionary = Table(
    "content_dictionary",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)
"""Every zstd dictionary this database's resources were compressed with, so that it stays
readable whatever dictionary a later version of the package writes with."""


def _index_table(
    name: str, *value_columns: Column[object], indexes: list[tuple[str, ...]]
) -> Table:
    """A search-index table: one row per (resource, parameter, value).

    Rows point at their resource by its integer surrogate key, as HAPI's index tables do: new
    keys only grow, so the per-resource index is appended to rather than split at random
    places the way an index on UUID strings is, which halved the cost of writing index rows.
    The resource type and parameter are one number, ``pid`` (``identity.param_id``).
    """
    table = Table(
        name,
        metadata,
        Column("resource_pk", Pk, nullable=False),
        Column("patient_id", String(ID)),
        Column("pid", Integer, nullable=False),
        *value_columns,
        Index(f"ix_{name}_resource", "resource_pk"),
    )
    for i, cols in enumerate(indexes):
        Index(f"ix_{name}_{i}", *(table.c[c] for c in cols))
    return table


sp_string = _index_table(
    "sp_string",
    Column("norm", Text, nullable=False),
    Column("exact", Text, nullable=False),
    indexes=[("pid", "norm")],
)
sp_token = _index_table(
    "sp_token",
    Column("system", BigInteger),
    Column("code", Text),
    Column("text", Text),
    indexes=[("pid", "code", "system")],
)
"""``system``: ``identity.system_id`` of the URL, which ``token_system`` keeps."""
sp_date = _index_table(
    "sp_date",
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=[("pid", "low"), ("pid", "high")],
)
sp_reference = _index_table(
    "sp_reference",
    Column("target_type", String(64)),
    Column("target_id", String(ID)),
    Column("url", Text, nullable=False),
    indexes=[("target_id", "target_type", "pid")],
)
sp_quantity = _index_table(
    "sp_quantity",
    Column("value", Float, nullable=False),
    Column("system", Text),
    Column("code", Text),
    Column("unit", Text),
    indexes=[("pid", "value")],
)
sp_number = _index_table(
    "sp_number",
    Column("value", Float, nullable=False),
    indexes=[("pid", "value")],
)
sp_uri = _index_table(
    "sp_uri",
    Column("value", Text, nullable=False),
    indexes=[("pid", "value")],
)
token_system = Table(
    "token_system",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("system", Text, nullable=False),
)
"""Every token system URL written, beside its number in ``sp_token.system``."""

INDEX_TABLES = {
    "strings": sp_string,
    "tokens": sp_token,
    "dates": sp_date,
    "references": sp_reference,
    "quantities": sp_quantity,
    "numbers": sp_number,
    "uris": sp_uri,
}
"""IndexRows attribute -> its table."""

PARAM_TYPE_TABLES = {
    "string": sp_string,
    "token": sp_token,
    "date": sp_date,
    "reference": sp_reference,
    "quantity": sp_quantity,
    "number": sp_number,
    "uri": sp_uri,
}
"""Search parameter type -> the table its values are in."""

care_relationship = Table(
    "care_relationship",
    metadata,
    Column("patient_id", String(ID), primary_key=True),
    Column("grantee", String(160), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("source_ref", String(140), primary_key=True),
    Column("via", String(ID), primary_key=True),
    Column("level", String(8), nullable=False),
    Column("proven", Boolean, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True)),
    Column("all_labels", Boolean, nullable=False, default=False),
    Index("ix_care_grantee", "grantee", "level", "patient_id"),
)
"""The care-relationship index (``sokhoe.access.care``): who may see or write into which
patient's compartment, and why. Rows carry ``patient_id`` like every other table, so they
shard with the records they open."""

care_restriction = Table(
    "care_restriction",
    metadata,
    Column("patient_id", String(ID), primary_key=True),
    Column("label", String(8), primary_key=True),
    Column("facility", String(16), primary_key=True),
    Column("source_ref", String(140), primary_key=True),
    Column("via", String(ID), primary_key=True),
)
"""A patient's restrictions of sensitive categories (from their ``$restrict`` Consents)."""
