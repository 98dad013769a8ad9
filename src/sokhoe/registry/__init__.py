"""Reference registries: administrative units (and later facilities) of Vietnam."""

from sokhoe.registry.places import Province, Ward, province_by_code, provinces

__all__ = ["Province", "Ward", "province_by_code", "provinces"]
