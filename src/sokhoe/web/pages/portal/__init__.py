"""``/portal``: the citizen's own health book on their phone — sign in from the ward's QR,
declare, read, see who looked, share, and look after one's children."""

from fastapi import APIRouter

from sokhoe.web.pages.portal import family, home, signin, vaccinations

router = APIRouter(include_in_schema=False)
for module in (signin, home, family, vaccinations):
    router.include_router(module.router, prefix="/portal")

__all__ = ["router"]
