"""``/clinic``: the shared electronic medical record for facilities without their own software."""

from fastapi import APIRouter

from sokhoe.web.pages.clinic import chart, desk, signin, visit

router = APIRouter(include_in_schema=False)
for module in (signin, desk, chart, visit):
    router.include_router(module.router, prefix="/clinic")

__all__ = ["router"]
