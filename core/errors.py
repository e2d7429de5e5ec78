"""Errors a user can act on: each names where it happened, what was wrong and the fix."""

from __future__ import annotations

import re

SHOWN_CHARS = 60  # how much of a value or an instruction a message quotes


def shortened(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters with "…", so that a long value cannot flood a message."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def shown(value: object) -> str:
    """``repr(value)``, shortened."""
    return shortened(repr(value))


class EditError(ValueError):
    """A user-facing error.

    ``where`` is the node (or command) and input the problem belongs to, e.g.
    ``"Edit Image › image"``; ``fix`` says what to do about it. ``str()`` joins the three
    so ComfyUI's error dialog and a shell both show one readable sentence.
    """

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"[{where}] {problem} Fix: {fix}")

    @classmethod
    def parse(cls, text: str) -> EditError | None:
        """The error whose ``str()`` is ``text`` (ComfyUI's VALIDATE_INPUTS can only return a
        string), or None for text in another form."""
        found = re.fullmatch(r"\[([^\]]+)\] (.+?) Fix: (.+)", text, re.DOTALL)
        return cls(*found.groups()) if found else None
