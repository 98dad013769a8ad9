"""Quantities written in Vietnamese words, as a narcotic prescription requires.

Circular 26/2025/TT-BYT, Art. 6(7): a quantity under 10 is written with a leading zero ("05"),
and a narcotic's quantity is written in digits and then in words ("05 (năm) viên"). The words
follow ordinary Vietnamese counting:

- 1 is "mốt" after a tens word from twenty on ("hai mươi mốt"), "một" otherwise ("mười một");
- 5 is "lăm" after a tens word ("mười lăm", "hai mươi lăm"), "năm" otherwise;
- 4 after a tens word from twenty on may be "tư"; "bốn" is written here (both are correct, and
  "bốn" is the one nobody misreads);
- ten is "mười", the tens from twenty "mươi"; a zero tens inside a number is "lẻ" ("một trăm
  lẻ năm"; "linh" in the south: both are correct, "lẻ" is written here);
- a zero hundreds inside a number is "không trăm" ("một nghìn không trăm hai mươi");
- thousands "nghìn" (the northern word, the one official texts use), millions "triệu",
  billions "tỷ".

A quantity with a fractional part (half a tablet) is written "phẩy" and its digits' words
("hai phẩy năm"), as Vietnamese decimal numbers are read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

DIGITS: Final = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
SCALES: Final = ("", "nghìn", "triệu", "tỷ")


def _below_thousand(n: int, whole: bool) -> list[str]:
    """Words for 0 < n < 1000; ``whole``: the hundreds are said even when zero (the group is
    not the number's first)."""
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    words: list[str] = []
    if hundreds or whole:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if ones and words:
            words.append("lẻ")
    elif tens == 1:
        words.append("mười")
    else:
        words += [DIGITS[tens], "mươi"]
    if ones:
        if ones == 1 and tens >= 2:
            words.append("mốt")
        elif ones == 5 and tens >= 1:
            words.append("lăm")
        else:
            words.append(DIGITS[ones])
    return words


def integer_words(n: int) -> str:
    """``n`` (0 or more, below a million billion) in Vietnamese words."""
    if n < 0:
        raise ValueError("a quantity is not negative")
    if n == 0:
        return DIGITS[0]
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    if len(groups) > len(SCALES):
        raise ValueError("too large a quantity to write in words")
    words: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        group = groups[scale]
        if group == 0:
            continue
        words += _below_thousand(group, whole=bool(words))
        if SCALES[scale]:
            words.append(SCALES[scale])
    return " ".join(words)


def quantity_words(value: Decimal | int | float | str) -> str:
    """A quantity in words; a fractional part is read digit group by digit group after
    "phẩy" (2.5 → "hai phẩy năm")."""
    number = Decimal(str(value)).normalize()
    if number < 0:
        raise ValueError("a quantity is not negative")
    whole = int(number)
    text = format(number, "f")
    if "." not in text:
        return integer_words(whole)
    fraction = text.split(".", 1)[1].rstrip("0")
    if not fraction:
        return integer_words(whole)
    return f"{integer_words(whole)} phẩy {integer_words(int(fraction))}"


def quantity_digits(value: Decimal | int | float | str) -> str:
    """A quantity in digits as a prescription writes it: a whole number under 10 with a leading
    zero ("05"), a fraction with a comma ("2,5")."""
    number = Decimal(str(value)).normalize()
    text = format(number, "f").replace(".", ",")
    whole = number == number.to_integral_value()
    return f"0{text}" if whole and Decimal(0) <= number < 10 else text


__all__ = ["integer_words", "quantity_digits", "quantity_words"]
