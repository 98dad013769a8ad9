"""Keeping the pages' message catalogues in step with their templates and code.

Which files hold an area's messages (one Babel domain per area, see ``web/i18n.py``), and the
extraction itself, in one place: ``scripts/i18n_catalogue.py`` merges what is found into the
Vietnamese ``.po`` file, and ``tests/web/test_catalogues.py`` fails while any found message has
no translation. ``gettext`` of the code takes the request or the language first
(``common.gettext(request, message)``, the dashboard's ``gettext(lang, message)``), hence its
message is the second argument; ``N_(message)`` marks a text translated where it is shown
(titles, labels), and ``Message(message, **values)`` what a service says when it refuses
(``sokhoe.messages``: the pages translate it, the API answers its English).
See: https://babel.pocoo.org/en/latest/messages.html
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

REFUSALS: Final = (
    "operations/check_in.py",
    "operations/presence.py",
    "mpi/cccd_qr.py",
    "mpi/identifiers.py",
    "access/policy.py",
    "access/guard.py",
    "access/accounts.py",
    "interop/claims/facts.py",
    "interop/claims/build.py",
    "prescribing/dispense.py",
    "prescribing/lookup.py",
    "prescribing/pharmacy.py",
    "access/prescription_code.py",
    "access/guardians.py",
)
"""Modules outside ``clinic/`` whose messages reach the clinic pages: the desk's check-in (the
card's QR, identifiers), the chart's proof of presence, the door's refusals, the signature's
authenticator code, the bill's missing prices, the pharmacy counter's refusals, a guardian's
confirmation."""
SOURCES: Final = {
    "clinic": [
        ("clinic/**.py", "python"),
        ("web/pages/clinic/**.py", "python"),
        ("web/pages/pharmacy/**.py", "python"),
        ("web/pages/*.py", "python"),
        *((module, "python") for module in REFUSALS),
        ("web/templates/clinic/**.html", "jinja2.ext:babel_extract"),
        ("web/templates/pharmacy/**.html", "jinja2.ext:babel_extract"),
    ],
    "portal": [
        ("portal/**.py", "python"),
        ("web/pages/portal/**.py", "python"),
        ("web/templates/portal/**.html", "jinja2.ext:babel_extract"),
    ],
    "dashboard": [
        ("warehouse/catalogue.py", "python"),
        ("warehouse/medication.py", "python"),
        ("web/dashboard_*.py", "python"),
        ("web/templates/dashboard/**.html", "jinja2.ext:babel_extract"),
    ],
}
"""Per domain: glob patterns under the ``sokhoe`` package and their extraction method."""
KEYWORDS: Final = {**DEFAULT_KEYWORDS, "gettext": (2,), "Message": (1,)}
"""The code's keywords. Templates keep Babel's own: a ``{% trans %}`` block compiles to
``gettext(message)``, its message first."""


def extract(domain: str) -> Catalog:
    """Every message the area's templates and code translate."""
    root = Path(str(resources.files("sokhoe")))
    catalog = Catalog(domain=domain)
    options = {"**.html": {"extensions": "jinja2.ext.i18n"}}
    for pattern, method in SOURCES[domain]:
        keywords = KEYWORDS if method == "python" else DEFAULT_KEYWORDS
        found = extract_from_dir(str(root), [(pattern, method)], options, keywords)
        for filename, lineno, message, comments, context in found:
            catalog.add(
                message, None, [(filename, lineno)], auto_comments=comments, context=context
            )
    return catalog


__all__ = ["REFUSALS", "SOURCES", "extract"]
