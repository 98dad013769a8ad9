"""Health-insurance appraisal XML (QĐ 130/QĐ-BYT as amended by 4750, 3176 and 1931).

``sokhoe claims export`` writes one signed ``GIAMDINHHS`` file per encounter of a facility-day.
The modules, each with one job:

- ``tables``: the table definitions (fields, types, lengths, required, formats) as data;
- ``catalogue``: the facility's price list (built-in demo prices or a CSV file);
- ``sources``: reading an encounter's record through the access door;
- ``build``: record → table rows; ``validate``: rows → problems; ``checks``: appraiser-style
  warnings (repeated tests, overlapping prescriptions);
- ``envelope`` and ``signing``: the file layout and its XML signature;
- ``export``: the facility-day job and its ``report.json``; ``cli``: the command.

Entry points: :func:`sokhoe.interop.claims.export.export_day` with
:func:`~sokhoe.interop.claims.export.export_repository` and
:class:`~sokhoe.interop.claims.export.ExportOptions`.
"""
