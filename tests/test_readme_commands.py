"""Every ``sokhoe`` command line the README shows exists as written: its sub-command path
and each of its options (issue 16: the README's commands must work as documented)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from sokhoe.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The `sokhoe` command", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _inline() -> list[str]:
    """The ``sokhoe …`` command lines quoted in the README's text (`` `sokhoe x --y` ``)."""
    text = README.read_text(encoding="utf-8").replace("\n", " ")
    return [m.group(1) for m in re.finditer(r"`(sokhoe [a-z][^`]*)`", text)]


def _segments() -> list[str]:
    """Each command of the block and of the text: lines hold several, separated by `` / ``."""
    found = []
    for line in [*_command_block(), *_inline()]:
        line = line.split("  #", 1)[0]
        line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line.strip())  # SOKHOE_X=… before it
        found += [part.strip() for part in line.split(" / ") if part.strip()]
    return found


@cache
def _root() -> Any:
    return typer.main.get_command(app)


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command the words name (from the top), and the words after it (typer's own click
    objects: it carries a copy of click of its own)."""
    command: Any = _root()
    rest = words[1:] if words and words[0] == "sokhoe" else words
    while _is_group(command) and rest:
        sub = command.get_command(typer.Context(command), rest[0])
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return command, rest


def _alternatives(segment: str) -> list[str]:
    """``import patients|visits FILE``: one command line per sub-command named."""
    words = segment.split()
    for i, word in enumerate(words[:3]):
        if "|" in word and not word.startswith("-"):
            return [" ".join([*words[:i], alt, *words[i + 1 :]]) for alt in word.split("|")]
    return [segment]


@pytest.mark.parametrize("segment", [a for s in _segments() for a in _alternatives(s)])
def test_the_readme_command_exists_with_its_options(segment: str) -> None:
    words = segment.split()
    command, rest = _resolve(words)
    runs_itself = getattr(command, "invoke_without_command", False)  # sokhoe sync --upstream
    assert runs_itself or not _is_group(command), f"{segment!r}: no such sub-command"
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    used = {m.group(0) for m in re.finditer(r"--[a-z][a-z0-9-]*", " ".join(rest))}
    unknown = used - known
    assert not unknown, f"{segment!r}: {sorted(unknown)} not options of {command.name}"


def test_the_block_is_read_whole() -> None:
    """The parsing above sees every documented command (a guard against a silent no-op)."""
    segments = _segments()
    assert len(segments) > 60
    assert any(s.startswith("sokhoe serve") for s in segments)
    assert any(s.startswith("sokhoe ig build") for s in segments)
