"""Keep a page area's Vietnamese catalogue in step with its templates and code.

    python scripts/i18n_catalogue.py clinic

merges the messages ``sokhoe.web.catalogues.extract`` finds into
``src/sokhoe/web/locales/vi/LC_MESSAGES/<domain>.po`` (keeping every translation already made,
and the messages of the code that templates translate by value: labels, problems, roles), and
lists what still has no translation; ``tests/web/test_catalogues.py`` fails while any message
lacks one.
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from sokhoe.web.catalogues import extract
from sokhoe.web.i18n import po_path


def main(domain: str) -> int:
    path = po_path(domain)
    catalog = Catalog(locale="vi", domain=domain, project="sokhoe")
    if path.exists():
        with path.open("rb") as f:
            catalog = read_po(f, locale="vi", domain=domain)
    known = {m.id for m in catalog if m.id}
    for message in extract(domain):
        if message.id and message.id not in known:
            catalog.add(message.id, string=("", "") if isinstance(message.id, tuple) else "")
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, width=100)
    missing = [
        m.id
        for m in catalog
        if m.id and not (m.string if isinstance(m.string, str) else all(m.string))
    ]
    for mid in missing:
        print(f"untranslated: {mid!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "clinic"))
