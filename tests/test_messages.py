"""Messages: English for the API, the reader's language for the pages, from one raise."""

from __future__ import annotations

import ast
import pickle
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from sokhoe.errors import Conflict, InvalidResource, Issue
from sokhoe.fhir.profiles import profile_issues
from sokhoe.messages import InvalidValue, Message, message_of
from sokhoe.mpi.identifiers import BHYT, CCCD, validate_cccd
from sokhoe.web import i18n
from sokhoe.web.catalogues import REFUSALS, SOURCES, extract


def test_the_english_text_is_the_msgid_filled_in_and_numbers_are_grouped_per_language() -> None:
    due = Message("%(what)s is %(n)s đồng", what=Message("the birth date"), n=Decimal("150000"))
    assert str(due) == "the birth date is 150,000 đồng"
    assert i18n.translate("vi", "clinic", due) == "ngày sinh is 150.000 đồng"  # id unknown
    assert i18n.translate("en", "clinic", due) == str(due)
    assert i18n.translate("vi", "clinic", "plain English stays") == "plain English stays"
    year = Message("born in %(year)s", year="1985")
    assert i18n.translate("vi", "clinic", year) == "born in 1985"  # a str keeps its digits
    with pytest.raises(AttributeError):
        due.msgid = "changed"  # type: ignore[misc]
    sent = pickle.dumps(Issue.of("value", due))  # bulk loads validate in worker processes
    issue = pickle.loads(sent)  # noqa: S301 - our own bytes
    assert issue.message == due and issue.diagnostics == str(due)


def test_an_error_answers_english_and_keeps_its_message() -> None:
    said = Message("Invoice/%(id)s is already paid; a second payment is refused", id="inv-1")
    error = Conflict(said)
    assert str(error) == "Invoice/inv-1 is already paid; a second payment is refused"
    assert error.outcome["issue"] == [
        {"severity": "error", "code": "conflict", "diagnostics": str(error)}
    ]
    assert message_of(error) == said
    assert i18n.translate("vi", "clinic", said) == (
        "Bảng kê Invoice/inv-1 đã được thanh toán; không nhận thanh toán lần thứ hai"
    )
    assert Issue.of("conflict", said) == Issue("conflict", str(said))  # the message is extra
    assert message_of(Conflict("plain")) == "plain"


def test_identifier_issues_of_a_new_patient_name_their_field_in_vietnamese() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": "0010850123"},
            {"system": BHYT, "value": "XX9790123456789"},
        ],
    }
    issues = profile_issues(patient)
    assert [i.expression for i in issues] == [
        "Patient.identifier[0].value",
        "Patient.identifier[1].value",
    ]
    assert [i.diagnostics for i in issues] == [
        "CCCD must be exactly 12 digits, got '0010850123'",
        "BHYT card number must be 2 letters, a benefit digit 1–5, a 2-digit province code and "
        "10 digits (15 characters), got 'XX9790123456789'",
    ]
    shown = [i18n.translate("vi", "clinic", i.message or i.diagnostics) for i in issues]
    assert shown == [
        "Số CCCD phải có đúng 12 chữ số, đã nhận '0010850123'",
        "Mã thẻ BHYT phải gồm 2 chữ cái, 1 chữ số mức hưởng từ 1 đến 5, 2 chữ số mã tỉnh và "
        "10 chữ số (15 ký tự), đã nhận 'XX9790123456789'",
    ]
    assert InvalidResource(issues).outcome["issue"][0] == {
        "severity": "error",
        "code": "value",
        "diagnostics": "CCCD must be exactly 12 digits, got '0010850123'",
        "expression": ["Patient.identifier[0].value"],
    }
    with pytest.raises(ValueError, match="unknown province code '999'") as caught:
        validate_cccd("999123456789")
    assert isinstance(caught.value, InvalidValue)


def test_no_message_is_an_f_string() -> None:
    """Extraction reads ``Message("...")``'s literal id: an f-string would never be found in
    the catalogue (and would read English on a Vietnamese page)."""
    root = Path(str(resources.files("sokhoe")))
    assert all((root / module).is_file() for module in REFUSALS)  # extraction still finds them
    found = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"\bMessage\(\s*f[\"']", p.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_every_message_of_the_clinic_s_modules_is_in_its_catalogue() -> None:
    """Babel does not look inside a keyword's arguments: a ``Message`` written within another
    one's values would be missing from the catalogue (and read English on the page)."""
    root = Path(str(resources.files("sokhoe")))
    modules = {
        path
        for pattern, method in SOURCES["clinic"]
        if method == "python"
        for path in root.glob(pattern.replace("**", "**/*"))
    }
    written = {
        node.args[0].value
        for path in modules
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Message"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert len(written) > 80
    assert written - {m.id for m in extract("clinic")} == set()


def test_every_translation_fills_the_same_placeholders_as_its_message() -> None:
    """A translation naming another placeholder would fail the page that shows it."""
    with i18n.po_path("clinic").open("rb") as po:
        catalogue = read_po(po, locale="vi", domain="clinic")
    names = re.compile(r"%\((\w+)\)s")
    wrong = [
        m.id
        for m in catalogue
        if isinstance(m.id, str)
        and isinstance(m.string, str)
        and m.string
        and sorted(names.findall(m.id)) != sorted(names.findall(m.string))
    ]
    assert wrong == []
