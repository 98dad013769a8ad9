"""Vietnamese personal names with realistic frequencies.

Family-name shares follow the commonly cited estimates (Nguyễn ≈ 38 %, Trần ≈ 11 %, Lê ≈ 9.5 %,
Phạm ≈ 7 %, Hoàng/Huỳnh ≈ 5 %, …). A full name is family + middle + given, e.g. "Nguyễn Thị Lan".
"""

from __future__ import annotations

import random
from itertools import accumulate

_FAMILY: list[tuple[str, float]] = [
    ("Nguyễn", 38.0),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.0),
    ("Hoàng", 3.0),
    ("Huỳnh", 2.1),
    ("Phan", 4.5),
    ("Vũ", 2.0),
    ("Võ", 1.9),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    ("Đinh", 0.9),
    ("Trương", 0.8),
    ("Đào", 0.7),
    ("Mai", 0.6),
    ("Lương", 0.5),
    ("Tạ", 0.4),
    ("Cao", 0.4),
    ("Lâm", 0.4),
    ("Hà", 0.5),
    ("Tô", 0.3),
    ("Quách", 0.2),
    ("Thái", 0.3),
    ("La", 0.2),
]
_MIDDLE_MALE: list[tuple[str, float]] = [
    ("Văn", 40),
    ("Hữu", 10),
    ("Đức", 12),
    ("Minh", 14),
    ("Quốc", 8),
    ("Thanh", 6),
    ("Công", 5),
    ("Xuân", 5),
    ("Gia", 4),
    ("Trọng", 4),
    ("Hoàng", 4),
    ("Tuấn", 3),
]
_MIDDLE_FEMALE: list[tuple[str, float]] = [
    ("Thị", 50),
    ("Ngọc", 12),
    ("Thu", 8),
    ("Thanh", 7),
    ("Minh", 5),
    ("Bảo", 4),
    ("Phương", 4),
    ("Kim", 4),
    ("Hồng", 4),
    ("Khánh", 3),
    ("Mỹ", 3),
    ("Diệu", 2),
]
_GIVEN_MALE = (
    "An Anh Bảo Bình Cường Dũng Duy Đạt Định Đông Đức Giang Hải Hào Hiếu Hiển Hòa Hoàng Hùng "
    "Huy Khải Khang Khánh Khoa Kiên Lâm Lộc Long Luân Mạnh Minh Nam Nghĩa Nhân Phát Phong Phúc "
    "Phước Quân Quang Quốc Sơn Tài Tâm Thắng Thành Thiện Thịnh Toàn Trí Trung Tú Tuấn Tùng "
    "Việt Vinh Vũ"
).split()
_GIVEN_FEMALE = (
    "An Anh Ánh Bích Châu Chi Diễm Diệp Dung Duyên Giang Hà Hạnh Hằng Hiền Hoa Hồng Huệ Hương "
    "Huyền Khánh Lan Liên Linh Loan Mai My Nga Ngân Ngọc Nhi Nhung Oanh Phương Quyên Quỳnh Tâm "
    "Thảo Thơ Thu Thúy Thủy Trang Trâm Trinh Tuyết Uyên Vân Vi Xuân Yến"
).split()


class _Weighted:
    """Cheap weighted choice: one ``random()`` and a bisect over cumulative weights."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, pairs: list[tuple[str, float]]) -> None:
        self.items = [p[0] for p in pairs]
        self.cum = list(accumulate(p[1] for p in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cum)[0]


FAMILY = _Weighted(_FAMILY)
_MIDDLE = {"male": _Weighted(_MIDDLE_MALE), "female": _Weighted(_MIDDLE_FEMALE)}
_GIVEN = {"male": _GIVEN_MALE, "female": _GIVEN_FEMALE}


def person_name(rng: random.Random, sex: str) -> tuple[str, str, str]:
    """(family, middle, given) for a person of ``sex`` ("male"/"female")."""
    return FAMILY.pick(rng), _MIDDLE[sex].pick(rng), rng.choice(_GIVEN[sex])


def human_name(family: str, middle: str, given: str) -> dict[str, object]:
    """A FHIR HumanName; ``given`` carries the middle name first, as Vietnamese order does."""
    return {
        "use": "official",
        "text": f"{family} {middle} {given}",
        "family": family,
        "given": [middle, given],
    }
