"""Who an import acts as: a connected system of the facility (``import:{code}``) with just the
scopes it needs."""

from __future__ import annotations

from sokhoe.access.principal import Principal, system_principal

SCOPES = frozenset(
    {
        "system/Patient.cru",
        "system/Encounter.cru",
        "system/Condition.cru",
        "system/Organization.rs",
    }
)


def import_principal(facility: str, name: str | None = None) -> Principal:
    """The facility's import job as a connected system."""
    return system_principal(
        f"import:{facility}", f"Legacy import — {name or facility}", SCOPES, facility
    )
