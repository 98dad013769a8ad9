"""Every message of the clinic pages and the dashboard has its Vietnamese translation (pages
are Vietnamese first: an untranslated message would show English to a station's nurse or a
department's analyst)."""

from __future__ import annotations

from babel.messages.pofile import read_po

from sokhoe.access.principal import STAFF_ROLES
from sokhoe.warehouse.catalogue import FAMILIES, INDICATORS, REPEAT_DAYS
from sokhoe.warehouse.indicators import indicator as indicator_named
from sokhoe.web import i18n
from sokhoe.web.catalogues import extract
from sokhoe.web.dashboard_labels import COLUMNS, ROLES, VALUES, Cell, cell, label


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


def test_every_dashboard_message_is_translated_and_none_is_fuzzy() -> None:
    """The dashboard's catalogue holds every message its templates and code mark (and the
    warehouse catalogue's titles), each translated, none fuzzy, none left over untranslated."""
    wanted = {m.id for m in extract("dashboard") if m.id}
    assert len(wanted) > 150
    with i18n.po_path("dashboard").open("rb") as po:
        catalogue = read_po(po, locale="vi", domain="dashboard")
    assert not catalogue.fuzzy, "the catalogue's header is marked fuzzy"
    entries = {m.id: m for m in catalogue if m.id}
    assert wanted <= set(entries), (
        f"run scripts/i18n_catalogue.py dashboard: {wanted - set(entries)}"
    )
    assert [mid for mid, m in entries.items() if m.fuzzy] == []
    untranslated = [mid for mid, m in entries.items() if not m.string or m.string == mid]
    assert untranslated == []
    compiled = i18n.catalogue("vi", "dashboard")
    assert compiled.gettext("Repeated tests") == "Xét nghiệm lặp lại"


def test_the_dashboard_has_words_for_every_column_code_title_and_role() -> None:
    """What the warehouse publishes and the pages show (``web/dashboard_labels.py``)."""
    compiled = i18n.catalogue("vi", "dashboard")
    for indicator in INDICATORS:
        assert set(indicator.columns) <= set(COLUMNS), indicator.name
        for text in (indicator.title, indicator.note):
            assert not text or compiled.gettext(text) != text, text
    for name in FAMILIES.values():
        assert compiled.gettext(name) != name
    assert STAFF_ROLES <= set(ROLES)
    for codes in VALUES.values():
        for word in codes.values():
            assert compiled.gettext(word) != word
    assert f"within {REPEAT_DAYS} days" in indicator_named("repeated_tests").title
    assert label("vi", "level", "commune") == "Trạm y tế xã"
    assert label("en", "sector", "ministry-sector") == "Ministry or sector"
    assert label("vi", "province", "Cà Mau") == "Cà Mau"  # names stay as they are


def test_numbers_are_written_the_way_each_language_does() -> None:
    assert i18n.format_number(1234567, "vi") == "1.234.567"
    assert i18n.format_number(1234.25, "vi") == "1.234,2"
    assert i18n.format_number(87.5, "vi") == "87,5"
    assert i18n.format_number(1234567, "en") == "1,234,567"
    assert i18n.format_number(87.5, "en") == "87.5"
    assert i18n.format_number(3.14159, "vi", 2) == "3,14"
    assert i18n.format_number(None) == ""
    assert cell("vi", "people", 12345) == Cell("12.345", "num")
    assert cell("vi", "month", "2026-01") == Cell("01/2026")
    assert cell("vi", "week", "2026-01-05") == Cell("05/01/2026")
    assert cell("vi", "alarm", True) == Cell("có")
    assert cell("en", "alarm", False) == Cell("no")
    assert cell("vi", "people", "x") == Cell("x", "suppressed")
