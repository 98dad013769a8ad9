"""A synthetic, reproducible Vietnamese population as FHIR R4 resources (``sokhoe demo``)."""

from sokhoe.demo.writer import DemoSummary, write_demo

__all__ = ["DemoSummary", "write_demo"]
