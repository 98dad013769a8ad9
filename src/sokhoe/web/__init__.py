"""The thin web layer: FastAPI routes that translate HTTP to the FHIR core and back."""

from sokhoe.web.app import create_app

__all__ = ["create_app"]
