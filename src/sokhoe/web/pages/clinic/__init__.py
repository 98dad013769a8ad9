"""``/clinic``: the shared electronic medical record for facilities without their own software."""

from fastapi import APIRouter

from sokhoe.web.pages.clinic import (
    bill,
    chart,
    declared,
    desk,
    emergency,
    printing,
    sign,
    signin,
    visit,
)

router = APIRouter(include_in_schema=False)
for module in (signin, desk, emergency, chart, declared, visit, sign, printing, bill):
    router.include_router(module.router, prefix="/clinic")

__all__ = ["router"]
