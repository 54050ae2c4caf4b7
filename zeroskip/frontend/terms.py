"""How a caller's options are named in messages: the command speaks in flags (``--calibrate
CAL.npy``), the Python API in argument names (``calibrate=``). One :class:`Terms` goes down to
whatever raises, so each caller reads its own words."""

from __future__ import annotations

__all__ = ["Terms", "PYTHON", "CLI"]


class Terms:
    """The names of options in error messages.

    Parameters
    ----------
    flags : bool
        True: the command's flags (``--calibrate``); false: the API's argument names.
    """

    def __init__(self, flags: bool):
        self.flags = flags

    def __call__(self, name: str) -> str:
        """An option as the subject of a message: ``--double-buffer`` or ``double_buffer``
        (the ``spell`` of :func:`zeroskip.array_options.array_config`)."""
        return "--" + name.replace("_", "-") if self.flags else name

    def given(self, name: str, metavar: str = "") -> str:
        """An option as something to give or drop: ``--calibrate CAL.npy`` or
        ``calibrate=...``."""
        if self.flags:
            return f"{self(name)} {metavar}".rstrip()
        return f"{name}=..."

    def __repr__(self) -> str:
        return "CLI" if self.flags else "PYTHON"


#: The Python API's argument names.
PYTHON = Terms(flags=False)
#: The ``zeroskip`` command's flags.
CLI = Terms(flags=True)
