"""Quantities in Vietnamese words and digits, as a narcotic prescription writes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sokhoe.prescribing.words import integer_words, quantity_digits, quantity_words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (1, "một"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),  # "một" after mười, "mốt" only from hai mươi on
        (14, "mười bốn"),
        (15, "mười lăm"),  # five after a tens word is "lăm"
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (25, "hai mươi lăm"),
        (30, "ba mươi"),
        (105, "một trăm lẻ năm"),  # a zero tens is "lẻ"
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (1000, "một nghìn"),
        (1005, "một nghìn không trăm lẻ năm"),  # a zero hundreds inside is said
        (2500, "hai nghìn năm trăm"),
        (100000, "một trăm nghìn"),
        (1250000, "một triệu hai trăm năm mươi nghìn"),
    ],
)
def test_whole_numbers(n: int, words: str) -> None:
    assert integer_words(n) == words


def test_fractions_digits_and_refusals() -> None:
    assert quantity_words(Decimal("2.5")) == "hai phẩy năm"
    assert quantity_words("20.0") == "hai mươi"
    assert quantity_digits(5) == "05"  # under 10: a leading zero
    assert quantity_digits(Decimal("20")) == "20"
    assert quantity_digits("2.5") == "2,5"
    with pytest.raises(ValueError, match="negative"):
        integer_words(-1)
