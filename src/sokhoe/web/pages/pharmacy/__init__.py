"""``/pharmacy``: the pharmacist's pages — scan or type a prescription code, see what remains,
hand over all or part, print the labels."""

from fastapi import APIRouter

from sokhoe.web.pages.pharmacy import counter

router = APIRouter(include_in_schema=False)
router.include_router(counter.router, prefix="/pharmacy")

__all__ = ["router"]
