"""Health-insurance appraisal XML (QĐ 130/QĐ-BYT as amended by 4750, 3176 and 1931)."""
