"""Patient lists and visit records exported from existing software (CSV, Excel)."""
