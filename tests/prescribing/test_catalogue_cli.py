"""``sokhoe catalogue import|list|show`` on a SQLite file: versions, refusals, nothing half-done."""

from __future__ import annotations

import json
from pathlib import Path

from openpyxl import Workbook
from typer.testing import CliRunner

from sokhoe.cli import app

HEADER = "ma,ten_thuoc,hoat_chat,ham_luong,don_vi_tinh,atc,gay_nghien,ke_don"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_import_list_show_and_refuse_a_bad_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    good = tmp_path / "byt.csv"
    good.write_text(
        f"{HEADER}\nM1,Morphin 10mg/1ml,Morphin hydroclorid,10mg/1ml,Ống,N02AA01,1,1\n"
        "P1,Paracetamol 500mg,Paracetamol,500mg,Viên,N02BE01,0,0\n",
        encoding="utf-8",
    )
    code, out = run("catalogue", "import", str(good), "--source", "byt", "--db", db)
    assert code == 0, out
    assert "catalogue byt version 1: 2 new" in out
    code, out = run("catalogue", "import", str(good), "--source", "byt", "--db", db)
    assert code == 0 and "unchanged (version 1)" in out

    bad = tmp_path / "bad.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (
        HEADER.split(","),
        ["P1", "Paracetamol 650mg", "Paracetamol", "650mg", "Viên", "N02BE01", 0, 0],
        ["Q1", "", "Paracetamol", "650mg", "Viên", "N02BE01", 0, 0],
        ["Q2", "Diazepam", "Diazepam", "5mg", "Viên", "N5", 0, 0],
    ):
        sheet.append(row)
    book.save(bad)
    code, out = run("catalogue", "import", str(bad), "--source", "byt", "--db", db)
    assert code == 1
    assert "row 3, column ten_thuoc: is required" in out
    assert "row 4, column atc" in out and "Nothing was imported" in out

    code, out = run("catalogue", "list", "--source", "byt", "--db", db)
    assert code == 0
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [(c, t, n) for c, t, n, *_ in lines] == [
        ("M1", "N", "Morphin 10mg/1ml"),
        ("P1", "C", "Paracetamol 500mg"),
    ]
    code, out = run("catalogue", "show", "P1", "--source", "byt", "--db", db)
    assert code == 0 and json.loads(out)["code"]["text"] == "Paracetamol 500mg"
    code, out = run("catalogue", "show", "ZZ", "--source", "byt", "--db", db)
    assert code == 2
    code, out = run("catalogue", "import", str(good), "--source", "sokhoe", "--db", db)
    assert code == 2 and "reference list" in out
