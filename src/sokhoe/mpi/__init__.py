"""Master patient index: identifier systems and their validation."""

from sokhoe.mpi.identifiers import (
    BHYT,
    CCCD,
    CMND,
    FACILITY,
    PRACTITIONER,
    cccd_century_sex_digit,
    make_cccd,
    mrn_system,
    validate_bhyt,
    validate_cccd,
)

__all__ = [
    "BHYT",
    "CCCD",
    "CMND",
    "FACILITY",
    "PRACTITIONER",
    "cccd_century_sex_digit",
    "make_cccd",
    "mrn_system",
    "validate_bhyt",
    "validate_cccd",
]
