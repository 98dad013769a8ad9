"""HL7 v2 (2.3–2.5.1) messages in and ACKs out: MLLP listener, HTTP endpoint, FHIR mapping.

Public surface: :class:`Hl7Processor` (one message → one transaction → its ACK), the MLLP
:class:`MllpServer`, :class:`MllpClient` and :class:`AllowList`, and :func:`local_system` (the
code system URI a facility's ConceptMap translates from).
"""

from sokhoe.interop.hl7v2.concepts import local_system
from sokhoe.interop.hl7v2.mllp import AllowList, ListenerLimits, MllpClient, MllpServer
from sokhoe.interop.hl7v2.processor import Hl7Processor, facility_principal

__all__ = [
    "AllowList",
    "Hl7Processor",
    "ListenerLimits",
    "MllpClient",
    "MllpServer",
    "facility_principal",
    "local_system",
]
