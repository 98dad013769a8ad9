"""Tables of the citizen portal: the devices a citizen stays signed in on, and the notices
already sent (so a break-the-glass alert or a vaccination reminder goes out once).

Neither is part of the record. A device row names the session token (its ``jti``) so the
citizen can see where they are signed in and end one session or all of them; the token itself
lives only in the phone's cookie. ``sokhoe.portal.devices`` and ``sokhoe.portal.notices`` read
and write them.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from sokhoe.store.sql.schema import metadata

citizen_device = Table(
    "citizen_device",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("phone", String(20), nullable=False),
    Column("label", String(200), nullable=False),
    # What the citizen recognises the device by: browser and system from the User-Agent.
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
    Index("ix_citizen_device_phone", "phone", "created"),
)

citizen_notice = Table(
    "citizen_notice",
    metadata,
    Column("key", String(200), primary_key=True),
    # ``glass:<audit seq>``, ``dose:<patient>:<vaccine>:<dose>``…: one notice per event.
    Column("phone", String(20), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("sent", DateTime(timezone=True), nullable=False),
)
