"""A stand-in for the national prescription system (Decision 808/QĐ-BYT), over real HTTP.

It serves the routes of the Decision's public mock (``nkocsea/gia_lap_api_lien_thong_don_quoc_gia``:
facility and doctor sign-in, ``gui-don-thuoc``) and the pharmacy side the Decision adds
(``thong-tin-don-thuoc/{code}``, ``cap-nhat-don-thuoc`` with ``app-name``/``app-key``), and
checks every field on its own -- names, types, formats, the code's shape, the 808 sex coding
(1 unknown, 2 male, 3 female) -- independently of ``sokhoe.prescribing.national.mapping``:
a request that breaks a rule is answered 422 and recorded in :attr:`NationalStandIn.invalid`,
which the tests require to stay empty.

A test can make it refuse the next prescription (:meth:`refuse_next`), answer 503 to
everything (:attr:`NationalStandIn.failing`), or stop and start again on the same port.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt

SECRET = "stand-in-secret-of-the-national-prescription-system"
APP_NAME, APP_KEY = "SOKHOE", "app-key-of-the-vendor"
PRESCRIPTION_FIELDS = (
    "loai_don_thuoc",
    "ma_don_thuoc",
    "ho_ten_benh_nhan",
    "ma_dinh_danh_y_te",
    "ma_dinh_danh_cong_dan",
    "ngay_sinh_benh_nhan",
    "can_nang",
    "gioi_tinh",
    "ma_so_the_bao_hiem_y_te",
    "thong_tin_nguoi_giam_ho",
    "dia_chi",
    "chan_doan",
    "luu_y",
    "hinh_thuc_dieu_tri",
    "dot_dung_thuoc",
    "thong_tin_don_thuoc",
    "loi_dan",
    "so_dien_thoai_nguoi_kham_benh",
    "ngay_tai_kham",
    "ngay_gio_ke_don",
    "signature",
)
"""The body fields of ``gui-don-thuoc``, as the mock's handler reads them."""
REPORT_FIELDS = (
    "ma_don_thuoc",
    "thong_tin_thuoc",
    "ma_dinh_danh_co_so_cung_ung_thuoc",
    "ten_co_so_cung_ung_thuoc",
    "so_dien_thoai_co_so_cung_ung_thuoc",
    "dia_chi_co_so_cung_ung_thuoc",
    "ma_hoa_don",
)
CODE = re.compile(r"^[0-9A-Za-z]{5}[0-9a-z]{7}-[cnhy]$")
DMY = "%d/%m/%Y"


@dataclass
class Account:
    code: str
    password: str
    insurance_code: str = ""
    """The facility's 5-character insurance code: the first part of its prescription codes."""


@dataclass
class NationalStandIn:
    facilities: dict[str, Account]
    doctors: dict[str, tuple[Account, str]]
    """Doctor code -> (account, the facility code they are registered at)."""
    port: int = 0
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    """(method, path, body) of every API request, in order."""
    prescriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    sign_ins: list[str] = field(default_factory=list)
    failing: int | None = None
    refusals: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse_next(self, message: str) -> None:
        """The next prescription is refused with ``message`` (400)."""
        self.refusals.append(message)

    def start(self) -> None:
        standin = self

        class Handler(_Handler):
            owner = standin

        for attempt in range(50):
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:  # the old socket of a restart on the same port
                if attempt == 49:
                    raise
                time.sleep(0.1)
        assert self._server is not None
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def sends_of(self, code: str) -> int:
        return sum(
            1
            for m, p, b in self.received
            if p.endswith("gui-don-thuoc") and isinstance(b, dict) and b.get("ma_don_thuoc") == code
        )

    # -- the API -------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        body: Any = None
        if raw:
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return 400, {"message": "body is not JSON"}
        with self._lock:
            self.received.append((method, path, body))
            if self.failing is not None:
                return self.failing, {"message": "Service Unavailable"}
            if method == "POST" and path == "/api/auth/dang-nhap-co-so-kham-chua-benh":
                return self._facility_sign_in(body or {})
            if method == "POST" and path == "/api/auth/dang-nhap-bac-si":
                return self._doctor_sign_in(body or {})
            if method == "POST" and path == "/api/v1/gui-don-thuoc":
                return self._send(headers, body)
            if method == "GET" and path.startswith("/api/v1/thong-tin-don-thuoc/"):
                return self._lookup(headers, unquote(path.rsplit("/", 1)[1]))
            if method == "POST" and path == "/api/v1/cap-nhat-don-thuoc":
                return self._report(headers, body)
        return 404, {"message": "Not Found"}

    def _token(self, subject: str) -> str:
        now = int(time.time())
        claims = {"sub": subject, "iat": now, "exp": now + 7 * 86400, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    def _facility_sign_in(self, form: dict[str, Any]) -> tuple[int, Any]:
        code = form.get("ma_lien_thong_co_so_kham_chua_benh")
        account = next((a for a in self.facilities.values() if a.code == code), None)
        if account is None or account.password != form.get("password"):
            return 400, {"message": "Username or password is incorrect!"}
        self.sign_ins.append(f"facility:{code}")
        return 200, {
            "ma_lien_thong_co_so_kham_chua_benh": code,
            "accessToken": self._token(f"facility:{code}"),
        }

    def _doctor_sign_in(self, form: dict[str, Any]) -> tuple[int, Any]:
        code = str(form.get("ma_lien_thong_bac_si"))
        found = self.doctors.get(code)
        if found is None or found[0].password != form.get("password"):
            return 400, {"message": "Doctor Code or password is incorrect!"}
        if found[1] != form.get("ma_lien_thong_co_so_kham_chua_benh"):
            return 400, {"message": "Doctor not found in medical facility"}
        self.sign_ins.append(f"doctor:{code}")
        return 200, {
            "ma_lien_thong_bac_si": code,
            "accessToken": self._token(f"doctor:{found[1]}:{code}"),
        }

    def _bearer(self, headers: dict[str, str]) -> str | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer":
            return None
        try:
            return str(jwt.decode(token, SECRET, algorithms=["HS256"])["sub"])
        except jwt.PyJWTError:
            return None

    def _send(self, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        subject = self._bearer(headers)
        if subject is None or not subject.startswith("doctor:"):
            return 401, {"message": "Authorization is incorrect or has expired!"}
        facility_code = subject.split(":")[1]
        facility = next(a for a in self.facilities.values() if a.code == facility_code)
        problems = check_prescription(body, facility.insurance_code)
        if problems:
            self.invalid.extend(problems)
            return 422, {"message": "; ".join(problems)}
        code = body["ma_don_thuoc"]
        if code in self.prescriptions:
            return 400, {
                "message": "The prescription already exists, please choose another "
                f"code or select the edit prescription function ... {code} !"
            }
        if self.refusals:
            return 400, {"message": self.refusals.pop(0)}
        self.prescriptions[code] = body
        return 200, {"success": "Gửi đơn thuốc thành công"}

    def _app(self, headers: dict[str, str]) -> bool:
        return headers.get("app-name") == APP_NAME and headers.get("app-key") == APP_KEY

    def _lookup(self, headers: dict[str, str], code: str) -> tuple[int, Any]:
        if not self._app(headers):
            return 401, {"message": "app-name or app-key is incorrect"}
        found = self.prescriptions.get(code)
        if found is None:
            return 404, {"message": f"Không tìm thấy đơn thuốc {code}"}
        return 200, found

    def _report(self, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if not self._app(headers):
            return 401, {"message": "app-name or app-key is incorrect"}
        problems = check_report(body, self.prescriptions)
        if problems:
            self.invalid.extend(problems)
            return 422, {"message": "; ".join(problems)}
        if any(
            r["ma_don_thuoc"] == body["ma_don_thuoc"] and r["ma_hoa_don"] == body["ma_hoa_don"]
            for r in self.reports
        ):
            return 400, {"message": "The sale already exists for this invoice"}
        self.reports.append(body)
        return 200, {"success": "Cập nhật thành công"}


class _Handler(BaseHTTPRequestHandler):
    owner: NationalStandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self.owner.handle(self.command, self.path, headers, raw)
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer


# -- the checks ------------------------------------------------------------------------------


def _text(
    body: dict[str, Any],
    name: str,
    problems: list[str],
    *,
    required: bool,
    pattern: str | None = None,
    most: int = 255,
) -> None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            problems.append(f"{name} is required")
        return
    if not isinstance(value, str):
        problems.append(f"{name} must be a string, not {type(value).__name__}")
    elif len(value) > most:
        problems.append(f"{name} is longer than {most}")
    elif pattern is not None and not re.fullmatch(pattern, value):
        problems.append(f"{name} {value!r} does not match {pattern}")


def _date(value: Any, fmt: str, name: str, problems: list[str]) -> None:
    try:
        datetime.strptime(str(value), fmt)
    except ValueError:
        problems.append(f"{name} {value!r} is not {fmt}")


def check_prescription(body: Any, insurance_code: str) -> list[str]:
    """Every rule of the prescription body (names from the mock; formats as other vendors'
    connectors send them)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = [f"unknown field {k}" for k in body if k not in PRESCRIPTION_FIELDS]
    problems += [f"missing field {k}" for k in PRESCRIPTION_FIELDS if k not in body]
    code = body.get("ma_don_thuoc")
    if not isinstance(code, str) or len(code) != 14 or not CODE.fullmatch(code):
        problems.append(f"ma_don_thuoc {code!r} is not 5 + 7 [0-9a-z] + '-' + c/n/h/y")
    else:
        if body.get("loai_don_thuoc") != code[-1]:
            problems.append("loai_don_thuoc is not the code's type letter")
        if code[:5] != insurance_code:
            problems.append(f"ma_don_thuoc {code} is not of facility {insurance_code}")
    if body.get("loai_don_thuoc") not in ("c", "n", "h", "y"):
        problems.append(f"loai_don_thuoc {body.get('loai_don_thuoc')!r} is not c/n/h/y")
    _text(body, "ho_ten_benh_nhan", problems, required=True)
    _text(body, "ma_dinh_danh_cong_dan", problems, required=False, pattern=r"\d{12}")
    _text(body, "ma_dinh_danh_y_te", problems, required=False, most=50)
    _text(body, "ma_so_the_bao_hiem_y_te", problems, required=False, pattern=r"[A-Z]{2}\d{13}")
    _text(body, "dia_chi", problems, required=True)
    _text(body, "so_dien_thoai_nguoi_kham_benh", problems, required=False, pattern=r"0\d{9,10}")
    for name in ("luu_y", "loi_dan", "thong_tin_nguoi_giam_ho"):
        _text(body, name, problems, required=False, most=2000)
    _date(body.get("ngay_sinh_benh_nhan"), DMY, "ngay_sinh_benh_nhan", problems)
    _date(body.get("ngay_gio_ke_don"), "%Y-%m-%d %H:%M:%S", "ngay_gio_ke_don", problems)
    sex = body.get("gioi_tinh")
    if type(sex) is not int or sex not in (1, 2, 3):
        problems.append(f"gioi_tinh {sex!r} is not 1 (unknown), 2 (male) or 3 (female)")
    weight = body.get("can_nang")
    if weight is not None and (not isinstance(weight, int | float) or not 0 < weight < 500):
        problems.append(f"can_nang {weight!r} is not a weight in kg")
    if body.get("hinh_thuc_dieu_tri") not in (1, 2, 3):
        problems.append(f"hinh_thuc_dieu_tri {body.get('hinh_thuc_dieu_tri')!r} is not 1-3")
    period = body.get("dot_dung_thuoc")
    if not isinstance(period, dict) or not period.get("dot"):
        problems.append("dot_dung_thuoc must be an object with dot, tu_ngay, den_ngay")
    else:
        _date(period.get("tu_ngay"), DMY, "dot_dung_thuoc.tu_ngay", problems)
        _date(period.get("den_ngay"), DMY, "dot_dung_thuoc.den_ngay", problems)
    diagnoses = body.get("chan_doan")
    if not isinstance(diagnoses, list) or not diagnoses:
        problems.append("chan_doan must list at least one diagnosis")
    else:
        for d in diagnoses:
            if not isinstance(d, dict):
                problems.append("chan_doan entries are objects")
                continue
            _text(d, "ma_chan_doan", problems, required=True, pattern=r"[A-Z]\d{2}(\.\d{1,2})?")
            _text(d, "ten_chan_doan", problems, required=True)
    lines = body.get("thong_tin_don_thuoc")
    if not isinstance(lines, list) or not lines:
        problems.append("thong_tin_don_thuoc must list at least one drug")
    else:
        for line in lines:
            problems += _drug_line(line, sold=False)
    return problems


def _drug_line(line: Any, *, sold: bool) -> list[str]:
    if not isinstance(line, dict):
        return ["a drug line is an object"]
    problems: list[str] = []
    for name in ("ma_thuoc", "biet_duoc", "ten_thuoc", "don_vi_tinh", "cach_dung"):
        _text(line, name, problems, required=True)
    quantity = line.get("so_luong")
    if not isinstance(quantity, int | float) or quantity <= 0:
        problems.append(f"so_luong {quantity!r} is not a positive number")
    if sold:
        _text(line, "ma_thuoc_da_ke_don", problems, required=True)
        count = line.get("so_luong_ban")
        if not isinstance(count, int | float) or count <= 0:
            problems.append(f"so_luong_ban {count!r} is not a positive number")
        elif isinstance(quantity, int | float) and count > quantity:
            problems.append("so_luong_ban is more than was prescribed")
    return problems


def check_report(body: Any, prescriptions: dict[str, dict[str, Any]]) -> list[str]:
    """Every rule of the dispensing report (``cap-nhat-don-thuoc``)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = [f"missing field {k}" for k in REPORT_FIELDS if k not in body]
    code = body.get("ma_don_thuoc")
    prescription = prescriptions.get(str(code))
    if prescription is None:
        return [*problems, f"ma_don_thuoc {code!r} is not a known prescription"]
    _text(body, "ma_dinh_danh_co_so_cung_ung_thuoc", problems, required=True)
    _text(body, "ten_co_so_cung_ung_thuoc", problems, required=True)
    _text(body, "ma_hoa_don", problems, required=True)
    _text(
        body, "so_dien_thoai_co_so_cung_ung_thuoc", problems, required=False, pattern=r"0\d{9,10}"
    )
    prescribed = {line["ma_thuoc"] for line in prescription["thong_tin_don_thuoc"]}
    lines = body.get("thong_tin_thuoc")
    if not isinstance(lines, list) or not lines:
        return [*problems, "thong_tin_thuoc must list what was sold"]
    for line in lines:
        problems += _drug_line(line, sold=True)
        if isinstance(line, dict):
            if line.get("ma_thuoc_da_ke_don") not in prescribed:
                problems.append(f"{line.get('ma_thuoc_da_ke_don')!r} was not prescribed")
            if line.get("ma_thuoc") != line.get("ma_thuoc_da_ke_don"):
                _text(line, "ly_do_thay_the", problems, required=True)
    return problems
