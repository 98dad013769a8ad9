"""Offline commune stations: ``sokhoe sync`` between a local node and its upstream server."""

from sokhoe.interop.sync.report import SyncInterrupted, SyncReport
from sokhoe.interop.sync.run import SyncTarget, synchronise

__all__ = ["SyncInterrupted", "SyncReport", "SyncTarget", "synchronise"]
