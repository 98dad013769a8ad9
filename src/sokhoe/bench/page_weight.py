"""What the first load of a page puts on the wire: the HTML and every stylesheet, icon, script
and image it references (and the images and fonts its stylesheets reference), fetched as a
browser with an empty cache would, counted as sent (compressed when the server compressed).
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx2 as httpx

TARGET_FIRST_LOAD_BYTES: Final = 200 * 1024
"""The issue's budget for a page's first load."""
BROWSER_HEADERS: Final = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "vi-VN,vi;q=0.9",
}
"""What Chromium sends for a navigation: the app may compress for it."""


def expect_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")


class _References(HTMLParser):
    """The subresources a browser fetches for a page: stylesheets, icons, scripts, images."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "link" and {"stylesheet", "icon", "preload", "modulepreload"} & set(rel):
            self._add(a.get("href"))
        elif tag in ("script", "img", "source", "iframe", "video", "audio", "embed"):
            self._add(a.get("src"))
            for part in (a.get("srcset") or "").split(","):
                self._add(part.strip().split(" ")[0] if part.strip() else None)
        elif tag == "object":
            self._add(a.get("data"))

    def _add(self, url: str | None) -> None:
        if url and not url.startswith("data:") and url not in self.found:
            self.found.append(url)


def _css_urls(css: str) -> list[str]:
    urls, rest = [], css
    while (at := rest.find("url(")) >= 0:
        end = rest.find(")", at)
        if end < 0:
            break
        url = rest[at + 4 : end].strip().strip("'\"")
        if url and not url.startswith("data:"):
            urls.append(url)
        rest = rest[end + 1 :]
    return urls


def _wire(response: httpx.Response) -> dict[str, Any]:
    """What one response put on the wire: its body as sent (compressed or not) and its
    status line and headers (HTTP/1.1, as the server wrote them)."""
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    return {
        "url": urlsplit(str(response.request.url)).path,
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "content_encoding": response.headers.get("content-encoding"),
        "body_bytes": response.num_bytes_downloaded,
        "decoded_bytes": len(response.content),
        "header_bytes": head,
    }


def first_load(base: str, cookies: httpx.Cookies, path: str) -> dict[str, Any]:
    """Fetch ``path`` and everything it references as a browser with an empty cache would (a
    fresh client with only the session cookie); bytes on the wire."""
    with httpx.Client(base_url=base, headers=BROWSER_HEADERS, cookies=cookies, timeout=60) as c:
        page = c.get(path)
        expect_ok(page)
        parser = _References()
        parser.feed(page.text)
        fetched = [_wire(page)]
        queue = [urljoin(str(page.url), u) for u in parser.found]
        seen: set[str] = set()
        while queue:
            url = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            response = c.get(url, headers={"Accept": "*/*"})
            expect_ok(response)
            fetched.append(_wire(response))
            if "text/css" in response.headers.get("content-type", ""):
                queue += [urljoin(url, u) for u in _css_urls(response.text)]
    body = sum(int(f["body_bytes"]) for f in fetched)
    heads = sum(int(f["header_bytes"]) for f in fetched)
    return {
        "requests": len(fetched),
        "body_bytes": body,
        "header_bytes": heads,
        "total_bytes": body + heads,
        "total_kb": round((body + heads) / 1024, 1),
        "compressed": any(f["content_encoding"] for f in fetched),
        "target_kb": TARGET_FIRST_LOAD_BYTES // 1024,
        "met": body + heads <= TARGET_FIRST_LOAD_BYTES,
        "files": fetched,
    }


__all__ = ["BROWSER_HEADERS", "TARGET_FIRST_LOAD_BYTES", "expect_ok", "first_load"]
