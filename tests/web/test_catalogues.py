"""Every message of the clinic pages has its Vietnamese translation (pages are Vietnamese
first: an untranslated message would show English to a station's nurse)."""

from __future__ import annotations

from sokhoe.web import i18n
from sokhoe.web.catalogues import extract


def test_every_clinic_message_is_translated() -> None:
    wanted = {m.id for m in extract("clinic") if m.id}
    assert len(wanted) > 100
    catalogue = i18n.catalogue("vi", "clinic")
    missing = []
    for mid in wanted:
        if isinstance(mid, tuple):
            if catalogue.ngettext(mid[0], mid[1], 2) == mid[1]:
                missing.append(mid)
        elif catalogue.gettext(mid) == mid and mid not in {"BHYT", "SpO₂"}:
            missing.append(mid)
    assert missing == [], f"untranslated (run scripts/i18n_catalogue.py clinic): {missing}"


def test_dates_and_money_are_written_the_vietnamese_way() -> None:
    assert i18n.format_date("2026-03-05") == "05/03/2026"
    assert i18n.format_date("2026-03-04T20:30:00+00:00") == "05/03/2026"  # 03:30 in Vietnam
    assert i18n.format_money(1234000) == "1.234.000 ₫"
