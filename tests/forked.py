"""``sokhoe`` commands run as processes of their own, forked from a server that imported sokhoe
once per test process.

A ``sokhoe serve`` started with ``python -c`` spends two to three seconds of CPU importing
sokhoe before it listens; the sync tests start eleven. Python's *forkserver* imports sokhoe
once, then forks a clean, single-threaded copy for each command: the command still runs in a
process of its own (own memory, own sockets, killed with SIGKILL like any other), through the
same ``sokhoe.cli.main`` and its arguments, only without importing everything again.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["sokhoe.cli", "sokhoe.web.app", "uvicorn"])


def _run(argv: Sequence[str], env: Mapping[str, str], log: str) -> None:
    """In the forked process: the environment, stdout to nowhere and stderr to ``log`` (as
    ``subprocess.Popen`` would), then the command line."""
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
    sys.argv = ["sokhoe", *argv]
    from sokhoe.cli import main

    main()


def start(argv: Sequence[str], env: Mapping[str, str], log: Path) -> BaseProcess:
    """``sokhoe *argv`` in a new process with ``env`` added to this one's environment.

    A forked ``serve`` runs one worker process: it is a daemon process (killed with the test
    process), and a daemon may not start children, which ``--workers N`` would
    (``tests/web/test_workers.py`` and ``make test-workers`` serve several)."""
    argv = list(argv)
    if argv[:1] == ["serve"] and "--workers" not in argv:
        argv += ["--workers", "1"]
    process = _CONTEXT.Process(target=_run, args=(argv, dict(env), str(log)), daemon=True)
    process.start()
    return process
