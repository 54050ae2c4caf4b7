"""How a sweep words what went wrong: bad input (exit 2) and the one-line form of an exception
recorded in a row's ``error``."""

from __future__ import annotations

__all__ = ["bad_input", "first_line"]


def bad_input(message: str) -> Exception:
    """A :class:`zeroskip.sim.loaders.BadInput` saying ``message`` (imported when needed, so
    that importing the sweep stays light)."""
    from zeroskip.sim.loaders import BadInput
    return BadInput(message)


def first_line(exc: BaseException) -> str:
    """``"Type: first line of the message"`` (or the type alone): what a row's ``error`` and a
    one-line message say of ``exc``."""
    text = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
