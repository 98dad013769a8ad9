"""Print views (``/clinic/visits/{id}/print/{kind}``): the visit summary, the referral slip and
the appointment slip, on A4, always in Vietnamese (``clinic/printing.py`` makes and audits
them). The QR opens the visit's signatures, verified, for whoever may see them."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic.facility_files import logo_data_uri
from sokhoe.clinic.printing import FOOTER, printout
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import now, page

router = APIRouter()


def qr_svg(text: str) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=3, border=2, xmldecl=False)
    return buffer.getvalue().decode("utf-8")


@router.get("/visits/{encounter_id}/print/{kind}")
async def print_view(request: Request, encounter_id: str, kind: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> Response:
            doc = printout(repo, encounter_id, kind, who.display or who.subject, now(repo))
            settings = request.app.state.settings
            doc.logo = logo_data_uri(settings.facility_dir, str(who.facility))
            base = str(settings.base_url).rstrip("/")
            url = f"{base}/clinic/visits/{encounter_id}/signature?code={doc.lookup_code}"
            return common.render(
                request,
                f"clinic/print/{kind}.html",
                who=who,
                lang="vi",
                doc=doc,
                footer=FOOTER,
                qr=qr_svg(url),
                lookup_url=url,
            )

        return await run_in_threadpool(work)

    return await page(request, body)
