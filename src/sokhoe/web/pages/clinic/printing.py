"""Print views (``/clinic/visits/{id}/print/{kind}``): the visit summary, the referral slip,
the appointment slip and the prescription (``?code=`` one of the visit's; a narcotic or
psychotropic one on its own form, in three copies), on A4, always in Vietnamese
(``clinic/printing.py`` makes and audits them). The QR opens the visit's signatures, verified,
for whoever may see them."""

from __future__ import annotations

import io

import barcode
import segno
from barcode.writer import SVGWriter
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


def code128_svg(text: str) -> str:
    """A Code 128 barcode (what a pharmacy's USB scanner reads), as inline SVG."""
    buffer = io.BytesIO()
    code = barcode.get("code128", text, writer=SVGWriter())
    code.write(
        buffer,
        options={"module_width": 0.3, "module_height": 9.0, "font_size": 8, "text_distance": 4.0},
    )
    svg = buffer.getvalue().decode("utf-8")
    return svg[svg.index("<svg") :]


@router.get("/visits/{encounter_id}/print/{kind}")
async def print_view(request: Request, encounter_id: str, kind: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> Response:
            code = request.query_params.get("code")
            doc = printout(
                repo, encounter_id, kind, who.display or who.subject, now(repo), code=code
            )
            settings = request.app.state.settings
            doc.logo = logo_data_uri(settings.facility_dir, str(who.facility))
            base = str(settings.base_url).rstrip("/")
            url = f"{base}/clinic/visits/{encounter_id}/signature?code={doc.lookup_code}"
            template = (
                doc.prescription["form"].template
                if doc.prescription
                else f"clinic/print/{kind}.html"
            )  # N and H prescriptions have forms of their own (clinic/prescription_forms.py)
            return common.render(
                request,
                template,
                who=who,
                lang="vi",
                doc=doc,
                footer=FOOTER,
                qr=qr_svg(url),
                lookup_url=url,
                rx_qr=qr_svg(doc.prescription["code"]) if doc.prescription else None,
                rx_barcode=code128_svg(doc.prescription["code"]) if doc.prescription else None,
            )

        return await run_in_threadpool(work)

    return await page(request, body)
