"""Errors a user can act on: each names where it happened, what was wrong and the fix."""

from __future__ import annotations


class EditError(ValueError):
    """A user-facing error.

    ``where`` is the node (or command) and input the problem belongs to, e.g.
    ``"Edit Image › image"``; ``fix`` says what to do about it. ``str()`` joins the three
    so ComfyUI's error dialog and a shell both show one readable sentence.
    """

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"[{where}] {problem} Fix: {fix}")
