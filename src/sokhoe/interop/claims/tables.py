"""The appraisal XML tables as data: field names, types, lengths, required flags, formats.

Why one declarative table: the generator writes fields in this order and the validator checks
the same definitions, so a change in the rules (QĐ 1931/QĐ-BYT of 29 June 2026 widened
``MUC_HUONG`` to 4 characters) is one edit here, and what we emit is what we check.

The rule chain: QĐ 130/QĐ-BYT (18 Jan 2023) → tables replaced by QĐ 4750/QĐ-BYT (in force
1 July 2024) → amended by QĐ 3176/QĐ-BYT (1 Jan 2025) → QĐ 1931/QĐ-BYT (1 July 2026).

Sources, and what is unconfirmed: the field lists, types and sizes follow a public field-by-field
mapping of QĐ 130 as consolidated by QĐ 4750 and the social-insurance agency's integration guide
for QĐ 3176 (inner root elements, XML0 fields); the official PDF tables were not read. So:
- ``required`` is *our* policy (what a claim needs for appraisal and what the record always
  has), not the official "bắt buộc" column: unconfirmed.
- ``MAXA_CU_TRU`` is 3 characters in the 2023 table but commune codes have 5 digits since the
  2025 reform (XML9 already allows 5): we allow 5. Unconfirmed.
- ``MA_LOAI_KCB`` and ``MA_DOITUONG_KCB`` are strings ("01", "1.11") per QĐ 4750, although the
  2023 spreadsheet says "number".
- Root elements of XML4, XML5, XML7, XML8 are taken from public implementations: unconfirmed.

See: https://github.com/nguyen2887/vn-healthcare
(skills/vn-healthcare/references/domains/bhyt-data.md)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "num", "dt12", "d8"]
"""``str`` text; ``num`` a decimal number written with "."; ``dt12`` ``yyyyMMddHHmm``;
``d8`` ``yyyyMMdd``."""

ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?")
"""An ICD-10 code as written in the XML (with the dot, at most 7 characters)."""
BHYT_CARD = re.compile(r"[A-Z]{2}[1-5][0-9]{2}[0-9]{10}")
LOAI_KCB = re.compile(r"[0-9]{2}")
DOITUONG_KCB = re.compile(r"[0-9]{1,2}(\.[0-9]{1,2})?")
FACILITY_CODE = re.compile(r"[0-9A-Z]{5}")
MAX_SECONDARY_DIAGNOSES = 12
"""``MA_BENH_KT``: at most 12 codes separated by ";"."""


@dataclass(frozen=True, slots=True)
class Field:
    """One element of a row."""

    name: str
    kind: Kind = "str"
    max_len: int | None = None
    """Characters; None is the tables' "n" (no limit stated)."""
    required: bool = False
    pattern: re.Pattern[str] | None = None
    """Full-match pattern for each ";"-separated value (None: no format rule)."""
    max_items: int | None = None
    """How many ";"-separated values are allowed (None: one value, no ";" splitting)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One ``FILEHOSO``: its ``LOAIHOSO``, element path and fields in document order."""

    loai: str
    """``LOAIHOSO``: "XML1", "XML2", …"""
    root: str
    list_tag: str | None
    """The list element between root and rows (None: the root is the single row)."""
    row_tag: str | None
    fields: tuple[Field, ...]
    title: str

    @property
    def single(self) -> bool:
        return self.list_tag is None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.loai} has no field {name}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _s(name: str, size: int | None = None, **kw: object) -> Field:
    return Field(name, "str", size, **kw)  # type: ignore[arg-type]


def _n(name: str, size: int, **kw: object) -> Field:
    return Field(name, "num", size, **kw)  # type: ignore[arg-type]


def _t(name: str, **kw: object) -> Field:
    return Field(name, "dt12", 12, **kw)  # type: ignore[arg-type]


def _d(name: str, **kw: object) -> Field:
    return Field(name, "d8", 8, **kw)  # type: ignore[arg-type]


_MA_LK = _s("MA_LK", 100, required=True)
_STT = _n("STT", 10, required=True)

XML0 = Table(
    "XML0",
    "CHI_TIEU_TRANG_THAI_KCB",
    "DSACH_TRANG_THAI_KCB",
    "TRANG_THAI_KCB",
    (
        _MA_LK,
        _STT,
        _s("MA_BN", 100, required=True),
        _s("HO_TEN", 255, required=True),
        _s("SO_CCCD", 15),
        _t("NGAY_SINH", required=True),
        _n("GIOI_TINH", 1, required=True),
        _s("MA_THE_BHYT", 15, pattern=BHYT_CARD),
        _s("MA_DKBD", 5, pattern=FACILITY_CODE),
        _d("GT_THE_TU"),
        _d("GT_THE_DEN"),
        _s("MA_DOITUONG_KCB", 4, required=True, pattern=DOITUONG_KCB),
        _t("NGAY_VAO", required=True),
        _t("NGAY_VAO_NOI_TRU"),
        _s("LY_DO_VNT", 1024),
        _s("MA_LY_DO_VNT", 5),
        _s("MA_LOAI_KCB", 2, required=True, pattern=LOAI_KCB),
        _s("MA_CSKCB", 5, required=True, pattern=FACILITY_CODE),
        _s("MA_DICH_VU", 50),
        _s("TEN_DICH_VU", 1024),
        _s("MA_THUOC", 255),
        _s("TEN_THUOC", 1024),
        _s("MA_VAT_TU", 255),
        _s("TEN_VAT_TU", 1024),
        _t("NGAY_YL", required=True),
        _s("DU_PHONG"),
    ),
    "Check-in status (trạng thái khám bệnh, chữa bệnh)",
)

XML1 = Table(
    "XML1",
    "TONG_HOP",
    None,
    None,
    (
        _MA_LK,
        _STT,
        _s("MA_BN", 100, required=True),
        _s("HO_TEN", 255, required=True),
        _s("SO_CCCD", 15),
        _t("NGAY_SINH", required=True),
        _n("GIOI_TINH", 1, required=True),
        _s("NHOM_MAU", 5),
        _s("MA_QUOCTICH", 3, required=True),
        _s("MA_DANTOC", 2),
        _s("MA_NGHE_NGHIEP", 5),
        _s("DIA_CHI", 1024, required=True),
        _s("MATINH_CU_TRU", 3),
        _s("MAHUYEN_CU_TRU", 3),
        _s("MAXA_CU_TRU", 5),
        _s("DIEN_THOAI", 15),
        _s("MA_THE_BHYT", None, pattern=BHYT_CARD, max_items=10),
        _s("MA_DKBD", None, pattern=FACILITY_CODE, max_items=10),
        _s("GT_THE_TU", None, pattern=re.compile(r"[0-9]{8}"), max_items=10),
        _s("GT_THE_DEN", None, pattern=re.compile(r"[0-9]{8}"), max_items=10),
        _t("NGAY_MIEN_CCT"),
        _s("LY_DO_VV", required=True),
        _s("LY_DO_VNT"),
        _s("MA_LY_DO_VNT", 5),
        _s("CHAN_DOAN_VAO", required=True),
        _s("CHAN_DOAN_RV", required=True),
        _s("MA_BENH_CHINH", 7, required=True, pattern=ICD10),
        _s("MA_BENH_KT", 100, pattern=ICD10, max_items=MAX_SECONDARY_DIAGNOSES),
        _s("MA_BENH_YHCT", 255),
        _s("MA_PTTT_QT", 125),
        _s("MA_DOITUONG_KCB", 3, required=True, pattern=DOITUONG_KCB),
        _s("MA_NOI_DI", 5),
        _s("MA_NOI_DEN", 5),
        _n("MA_TAI_NAN", 1),
        _t("NGAY_VAO", required=True),
        _t("NGAY_VAO_NOI_TRU"),
        _t("NGAY_RA", required=True),
        _s("GIAY_CHUYEN_TUYEN", 50),
        _n("SO_NGAY_DTRI", 3, required=True),
        _s("PP_DIEU_TRI"),
        _n("KET_QUA_DTRI", 1, required=True),
        _n("MA_LOAI_RV", 1, required=True),
        _s("GHI_CHU"),
        _t("NGAY_TTOAN"),
        _n("T_THUOC", 15, required=True),
        _n("T_VTYT", 15, required=True),
        _n("T_TONGCHI_BV", 15, required=True),
        _n("T_TONGCHI_BH", 15, required=True),
        _n("T_BNTT", 15, required=True),
        _n("T_BNCCT", 15, required=True),
        _n("T_BHTT", 15, required=True),
        _n("T_NGUONKHAC", 15, required=True),
        _n("T_BHTT_GDV", 15),
        _n("NAM_QT", 4, required=True),
        _n("THANG_QT", 2, required=True),
        _s("MA_LOAI_KCB", 2, required=True, pattern=LOAI_KCB),
        _s("MA_KHOA", 50, required=True),
        _s("MA_CSKCB", 5, required=True, pattern=FACILITY_CODE),
        _s("MA_KHUVUC", 2),
        _s("CAN_NANG", 6),
        _s("CAN_NANG_CON", 100),
        _s("NAM_NAM_LIEN_TUC", 8),
        _s("NGAY_TAI_KHAM", 50),
        _s("MA_HSBA", 100),
        _s("MA_TTDV", 10),
        _s("DU_PHONG"),
    ),
    "Summary of the visit (tổng hợp khám bệnh, chữa bệnh)",
)

_MONEY_ROW = (
    "T_NGUONKHAC_NSNN",
    "T_NGUONKHAC_VTNN",
    "T_NGUONKHAC_VTTN",
    "T_NGUONKHAC_CL",
    "T_NGUONKHAC",
)

XML2 = Table(
    "XML2",
    "CHITIEU_CHITIET_THUOC",
    "DSACH_CHI_TIET_THUOC",
    "CHI_TIET_THUOC",
    (
        _MA_LK,
        _STT,
        _s("MA_THUOC", 255, required=True),
        _s("MA_PP_CHEBIEN", 255),
        _s("MA_CSKCB_THUOC", 10),
        _n("MA_NHOM", 2, required=True),
        _s("TEN_THUOC", 1024, required=True),
        _s("DON_VI_TINH", 50, required=True),
        _s("HAM_LUONG", 1024),
        _s("DUONG_DUNG", 4),
        _s("DANG_BAO_CHE", 1024),
        _s("LIEU_DUNG", 1024, required=True),
        _s("CACH_DUNG", 1024),
        _s("SO_DANG_KY", 255),
        _s("TT_THAU", 50),
        _n("PHAM_VI", 1, required=True),
        _n("TYLE_TT_BH", 3, required=True),
        _n("SO_LUONG", 10, required=True),
        _n("DON_GIA", 15, required=True),
        _n("THANH_TIEN_BV", 15, required=True),
        _n("THANH_TIEN_BH", 15, required=True),
        *(_n(name, 15, required=True) for name in _MONEY_ROW),
        _n("MUC_HUONG", 4, required=True),  # 4 characters from 1 July 2026 (QĐ 1931)
        _n("T_BNTT", 15, required=True),
        _n("T_BNCCT", 15, required=True),
        _n("T_BHTT", 15, required=True),
        _s("MA_KHOA", 15, required=True),
        _s("MA_BAC_SI", 255, required=True),
        _s("MA_DICH_VU", 255),
        _t("NGAY_YL", required=True),
        _t("NGAY_TH_YL"),
        _n("MA_PTTT", 1, required=True),
        _n("NGUON_CTRA", 1),
        _n("VET_THUONG_TP", 1),
        _s("DU_PHONG"),
    ),
    "Drugs (chi tiết thuốc)",
)

XML3 = Table(
    "XML3",
    "CHITIEU_CHITIET_DVKT_VTYT",
    "DSACH_CHI_TIET_DVKT",
    "CHI_TIET_DVKT",
    (
        _MA_LK,
        _STT,
        _s("MA_DICH_VU", 50),
        _s("MA_PTTT_QT", 255),
        _s("MA_VAT_TU", 255),
        _n("MA_NHOM", 2, required=True),
        _s("GOI_VTYT", 3),
        _s("TEN_VAT_TU", 1024),
        _s("TEN_DICH_VU", 1024),
        _s("MA_XANG_DAU", 20),
        _s("DON_VI_TINH", 50, required=True),
        _n("PHAM_VI", 1, required=True),
        _n("SO_LUONG", 10, required=True),
        _n("DON_GIA_BV", 15, required=True),
        _n("DON_GIA_BH", 15, required=True),
        _s("TT_THAU", 25),
        _n("TYLE_TT_DV", 3, required=True),
        _n("TYLE_TT_BH", 3, required=True),
        _n("THANH_TIEN_BV", 15, required=True),
        _n("THANH_TIEN_BH", 15, required=True),
        _n("T_TRANTT", 15),
        _n("MUC_HUONG", 4, required=True),  # 4 characters from 1 July 2026 (QĐ 1931)
        *(_n(name, 15, required=True) for name in _MONEY_ROW),
        _n("T_BNTT", 15, required=True),
        _n("T_BNCCT", 15, required=True),
        _n("T_BHTT", 15, required=True),
        _s("MA_KHOA", 20, required=True),
        _s("MA_GIUONG", 50),
        _s("MA_BAC_SI", 255, required=True),
        _s("NGUOI_THUC_HIEN", 255),
        _s("MA_BENH", 100, pattern=ICD10, max_items=MAX_SECONDARY_DIAGNOSES + 1),
        _s("MA_BENH_YHCT", 255),
        _t("NGAY_YL", required=True),
        _t("NGAY_TH_YL"),
        _t("NGAY_KQ"),
        _n("MA_PTTT", 1, required=True),
        _n("VET_THUONG_TP", 1),
        _n("PP_VO_CAM", 1),
        _n("VI_TRI_TH_DVKT", 3),
        _s("MA_MAY", 1024),
        _s("MA_HIEU_SP", 255),
        _n("TAI_SU_DUNG", 1),
        _s("DU_PHONG"),
    ),
    "Services and supplies (chi tiết dịch vụ kỹ thuật và vật tư y tế)",
)

XML4 = Table(
    "XML4",
    "CHITIEU_CHITIET_DICHVUCANLAMSANG",
    "DSACH_CHI_TIET_CLS",
    "CHI_TIET_CLS",
    (
        _MA_LK,
        _STT,
        _s("MA_DICH_VU", 15, required=True),
        _s("MA_CHI_SO", 50, required=True),
        _s("TEN_CHI_SO", 255, required=True),
        _s("GIA_TRI", 50, required=True),
        _s("DON_VI_DO", 50),
        _s("MO_TA"),
        _s("KET_LUAN"),
        _t("NGAY_KQ", required=True),
        _s("MA_BS_DOC_KQ", 255),
        _s("DU_PHONG"),
    ),
    "Paraclinical results (chi tiết cận lâm sàng)",
)

XML5 = Table(
    "XML5",
    "CHITIEU_CHITIET_DIENBIENLAMSANG",
    "DSACH_CHI_TIET_DIEN_BIEN_BENH",
    "CHI_TIET_DIEN_BIEN_BENH",
    (
        _MA_LK,
        _STT,
        _s("DIEN_BIEN_LS", required=True),
        _s("GIAI_DOAN_BENH"),
        _s("HOI_CHAN"),
        _s("PHAU_THUAT"),
        _t("THOI_DIEM_DBLS", required=True),
        _s("NGUOI_THUC_HIEN", 255),
        _s("DU_PHONG"),
    ),
    "Clinical progress (diễn biến lâm sàng)",
)

XML7 = Table(
    "XML7",
    "CHI_TIEU_DU_LIEU_GIAY_RA_VIEN",
    None,
    None,
    (
        _MA_LK,
        _s("SO_LUU_TRU", 200, required=True),
        _s("MA_YTE", 200, required=True),
        _s("MA_KHOA_RV", 200, required=True),
        _t("NGAY_VAO", required=True),
        _t("NGAY_RA", required=True),
        _n("MA_DINH_CHI_THAI", 1),
        _s("NGUYENNHAN_DINHCHI"),
        _t("THOIGIAN_DINHCHI"),
        _n("TUOI_THAI", 2),
        _s("CHAN_DOAN_RV", 1500, required=True),
        _s("PP_DIEUTRI", 1500, required=True),
        _s("GHI_CHU", 1500),
        _s("MA_TTDV", 10),
        _s("MA_BS", 200, required=True),
        _s("TEN_BS", 255, required=True),
        _d("NGAY_CT", required=True),
        _s("MA_CHA", 10),
        _s("MA_ME", 10),
        _s("MA_THE_TAM", 15),
        _s("HO_TEN_CHA", 255),
        _s("HO_TEN_ME", 255),
        _n("SO_NGAY_NGHI", 2),
        _d("NGOAITRU_TUNGAY"),
        _d("NGOAITRU_DENNGAY"),
        _s("DU_PHONG"),
    ),
    "Discharge paper (giấy ra viện), inpatient stays",
)

XML8 = Table(
    "XML8",
    "CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN",
    None,
    None,
    (
        _MA_LK,
        _s("MA_LOAI_KCB", 2, required=True, pattern=LOAI_KCB),
        _s("HO_TEN_CHA", 255),
        _s("HO_TEN_ME", 255),
        _s("NGUOI_GIAM_HO", 255),
        _s("DON_VI", 1024, required=True),
        _t("NGAY_VAO", required=True),
        _t("NGAY_RA", required=True),
        _s("CHAN_DOAN_VAO", required=True),
        _s("CHAN_DOAN_RV", required=True),
        _s("QT_BENHLY", required=True),
        _s("TOMTAT_KQ"),
        _s("PP_DIEUTRI", required=True),
        _d("NGAY_SINHCON"),
        _d("NGAY_CONCHET"),
        _n("SO_CONCHET", 2),
        _n("KET_QUA_DTRI", 1, required=True),
        _s("GHI_CHU"),
        _s("MA_TTDV", 10),
        _d("NGAY_CT", required=True),
        _s("MA_THE_TAM", 15),
        _s("DU_PHONG"),
    ),
    "Record summary (tóm tắt hồ sơ bệnh án); also for uninsured visits (health book)",
)

CLAIM_TABLES: tuple[Table, ...] = (XML1, XML2, XML3, XML4, XML5, XML7, XML8)
"""The tables of the appraisal file, in ``FILEHOSO`` order. XML0 travels on its own (the
check-in is sent when the first cost arises, to its own endpoint, with its own signature)."""
TABLES: dict[str, Table] = {t.loai: t for t in (XML0, *CLAIM_TABLES)}
