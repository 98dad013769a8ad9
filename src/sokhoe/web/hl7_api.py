"""``POST /hl7/v2``: one HL7 v2 message over HTTPS, answered with its ACK.

For facilities whose interface engine speaks HTTP rather than MLLP. Unlike MLLP, the caller is
known from its bearer token: a facility's connected system may send only messages whose MSH-4
is its own facility; a platform client may relay any facility's. Only connected systems (client
tokens) may send at all: a staff or citizen token is refused with 403 and an ``AR`` NACK before
the message is processed, because an ADT applies as the facility's interface and would let, say, a
receptionist's token overwrite anyone's demographics. The body is the ER7 text
(``x-application/hl7-v2+er7`` or ``text/plain``, UTF-8); the response is the ACK in the same
form, status 200 whether the message was accepted (MSA-1 ``AA``) or not, as HL7 over HTTP
does: the acknowledgement, not the HTTP status, carries the application's answer (a refused
caller is an authorisation failure, so it gets 403, with the NACK as its body).
See: https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 (HL7 over HTTP)
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.errors import InvalidRequest
from sokhoe.interop.hl7v2.ack import build_ack, read_header
from sokhoe.interop.hl7v2.er7 import INTERNAL_ERROR, Hl7Fault
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.web.deps import principal, settings

log = logging.getLogger("sokhoe.hl7v2")

router = APIRouter(tags=["HL7 v2"])

ER7 = "x-application/hl7-v2+er7"
ACCEPTED_TYPES = (ER7, "text/plain", "application/hl7-v2")


def processor(request: Request) -> Hl7Processor:
    """One processor per application, built on first use over the app's store and access."""
    found = getattr(request.app.state, "hl7_processor", None)
    if isinstance(found, Hl7Processor):
        return found
    state = request.app.state
    made = Hl7Processor(
        state.store,
        settings(request).fhir_base,
        engine=state.tokens.engine,
        policy=state.policy,
        auditor=state.auditor,
    )
    state.hl7_processor = made
    return made


@router.post("/hl7/v2", summary="Apply one HL7 v2 message; the answer is its ACK")
async def receive_hl7(request: Request) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ACCEPTED_TYPES:
        raise InvalidRequest(f"Send the message as {ER7} or text/plain, not {kind or 'nothing'}")
    caller = principal(request)
    limit = settings(request).hl7_max_message_bytes
    body = await request.body()
    if len(body) > limit:
        raise InvalidRequest(f"The message is longer than {limit} bytes")
    text = body.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    source = request.client.host if request.client else None
    if caller.kind != "client":
        log.warning("HL7 v2 over HTTP refused: a %s token (role %s)", caller.kind, caller.role)
        refusal = Hl7Fault(
            f"Only a connected system's token may send HL7 v2 messages, not a {caller.kind}'s; "
            "nothing was applied",
            ack_code="AR",
            error_code=INTERNAL_ERROR,
        )
        nack = build_ack(read_header(text), "AR", refusal)
        return Response(nack, status_code=403, media_type=f"{ER7}; charset=utf-8")
    ack = await run_in_threadpool(processor(request).handle, text, source=source, principal=caller)
    return Response(ack, media_type=f"{ER7}; charset=utf-8")
