"""``/portal``: the citizen's own health book on their phone — sign in from the ward's QR,
declare, read, see who looked, share, and look after one's children."""

from fastapi import APIRouter

from sokhoe.web.pages.portal import (
    access_log,
    apps,
    book,
    claim,
    declare,
    download,
    family,
    home,
    sharing,
    signin,
    vaccinations,
)

router = APIRouter(include_in_schema=False)
modules = (
    signin,
    apps,
    home,
    claim,
    declare,
    book,
    download,
    access_log,
    sharing,
    family,
    vaccinations,
)
for module in modules:
    router.include_router(module.router, prefix="/portal")

__all__ = ["router"]
