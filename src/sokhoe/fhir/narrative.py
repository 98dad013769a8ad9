"""A short generated narrative for the conformance resources the platform publishes.

R4's dom-6 ("a resource should have narrative for robust management") is a best-practice
warning every validator reports for a resource without ``text``; a title and a sentence are
what a person browsing the server or a package needs.
See: https://hl7.org/fhir/R4/narrative.html
"""

from __future__ import annotations

from html import escape


def narrative(title: str, description: str) -> dict[str, str]:
    """``Resource.text`` of status ``generated`` with the title and the description."""
    div = f"<p><b>{escape(title)}</b></p><p>{escape(description)}</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>'}
