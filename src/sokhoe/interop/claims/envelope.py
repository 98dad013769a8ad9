"""The file the portal receives: ``GIAMDINHHS`` with one base64 ``FILEHOSO`` per table.

Layout (QĐ 4750/QĐ-BYT and the social-insurance agency's integration guide; one encounter per
file, as the portal's API wants)::

    GIAMDINHHS
      THONGTINDONVI/MACSKCB
      THONGTINHOSO
        NGAYLAP            yyyyMMdd
        SOLUONGHOSO        1
        DANHSACHHOSO/HOSO
          FILEHOSO         LOAIHOSO = XML1 …, NOIDUNGFILE = base64(UTF-8 inner XML)
      CHUKYDONVI           the facility's XML signature (see signing.py)

The check-in (XML0) is a separate file sent to its own endpoint when the first cost arises:
``CHI_TIEU_TRANG_THAI_KCB/DSACH_TRANG_THAI_KCB/TRANG_THAI_KCB`` rows, then ``CHUKYDONVI``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import date

from lxml import etree  # type: ignore[import-untyped]  # no lxml-stubs in the environment

from sokhoe.interop.claims.signing import SigningKey, sign, signature_placeholder
from sokhoe.interop.claims.tables import TABLES, Table
from sokhoe.interop.claims.validate import Row

XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def _rows_element(table: Table, rows: Sequence[Mapping[str, str]]) -> etree._Element:
    def fill(parent: etree._Element, row: Mapping[str, str]) -> None:
        for name in table.names:
            etree.SubElement(parent, name).text = row.get(name, "")

    root = etree.Element(table.root)
    if table.single:
        fill(root, rows[0])
        return root
    assert table.list_tag is not None and table.row_tag is not None  # noqa: S101  (by type)
    listing = etree.SubElement(root, table.list_tag)
    for row in rows:
        fill(etree.SubElement(listing, table.row_tag), row)
    return root


def inner_xml(loai: str, rows: Sequence[Mapping[str, str]]) -> bytes:
    """One table as a UTF-8 XML document (every field present, empty when not filled)."""
    element = _rows_element(TABLES[loai], rows)
    body: bytes = etree.tostring(element, encoding="utf-8")
    return XML_DECLARATION + body


def claim_document(
    facility_code: str, created: date, tables: Mapping[str, Sequence[Mapping[str, str]]]
) -> etree._Element:
    """The unsigned ``GIAMDINHHS`` of one encounter (with an empty ``CHUKYDONVI``)."""
    root = etree.Element("GIAMDINHHS")
    etree.SubElement(etree.SubElement(root, "THONGTINDONVI"), "MACSKCB").text = facility_code
    info = etree.SubElement(root, "THONGTINHOSO")
    etree.SubElement(info, "NGAYLAP").text = created.strftime("%Y%m%d")
    etree.SubElement(info, "SOLUONGHOSO").text = "1"
    hoso = etree.SubElement(etree.SubElement(info, "DANHSACHHOSO"), "HOSO")
    for loai, rows in tables.items():
        file = etree.SubElement(hoso, "FILEHOSO")
        etree.SubElement(file, "LOAIHOSO").text = loai
        content = base64.b64encode(inner_xml(loai, rows)).decode("ascii")
        etree.SubElement(file, "NOIDUNGFILE").text = content
    etree.SubElement(root, "CHUKYDONVI").append(signature_placeholder())
    return root


def checkin_document(rows: Sequence[Mapping[str, str]]) -> etree._Element:
    """The unsigned XML0 check-in document."""
    root = _rows_element(TABLES["XML0"], rows)
    etree.SubElement(root, "CHUKYDONVI").append(signature_placeholder())
    return root


def signed_bytes(document: etree._Element, key: SigningKey) -> bytes:
    """Sign and serialise (UTF-8, with the XML declaration)."""
    body: bytes = etree.tostring(sign(document, key), encoding="utf-8")
    return XML_DECLARATION + body


def read_claim(data: bytes) -> dict[str, list[Row]]:
    """The tables inside a ``GIAMDINHHS`` file, decoded (for checks, tests and re-imports)."""
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    out: dict[str, list[Row]] = {}
    for file in root.iterfind("THONGTINHOSO/DANHSACHHOSO/HOSO/FILEHOSO"):
        loai = file.findtext("LOAIHOSO") or ""
        inner = base64.b64decode(file.findtext("NOIDUNGFILE") or "")
        out[loai] = read_table(loai, inner)
    return out


def read_table(loai: str, inner: bytes) -> list[Row]:
    """Rows of one decoded table (field → text)."""
    table = TABLES[loai]
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(inner, parser=parser)
    if root.tag != table.root:
        raise ValueError(f"{loai}: root element is {root.tag}, expected {table.root}")
    elements = [root] if table.single else root.findall(f"{table.list_tag}/{table.row_tag}")
    return [{child.tag: child.text or "" for child in element} for element in elements]
