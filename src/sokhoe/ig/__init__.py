"""The Vietnam core FHIR implementation guide: profiles, extensions, the platform's code systems
and value sets, the checker every write and ``$validate`` use, and the NPM package build.

Public surface: :func:`sokhoe.ig.check.check`, :func:`sokhoe.ig.profiles.known`,
:func:`sokhoe.ig.profiles.structure_definitions`, :func:`sokhoe.ig.package.write_dir` and
:func:`sokhoe.ig.package.write_tgz`.
"""
