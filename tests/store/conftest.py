"""The store's tests run on every backend, PostgreSQL partitioned by patient included."""

from tests.store_layouts import store_on_every_layout

__all__ = ["store_on_every_layout"]
