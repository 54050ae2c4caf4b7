"""The array a user's options describe: :func:`array_config` turns rows, cols, format, N:M
pattern, board and architecture into the :class:`ArrayConfig` of the hardware, checked as the
command checks its options."""

from __future__ import annotations

from typing import Any, Callable

from zeroskip.config import ARCHS, DEPTH_OPTIONS, FORMATS, ArrayConfig
from zeroskip.sim.loaders import BadInput

__all__ = ["array_config", "array_side", "ARRAY_DEFAULTS", "MAX_ARRAY_SIDE"]

#: The array options and their defaults when no board fixes them.
ARRAY_DEFAULTS: dict[str, Any] = {"rows": 8, "cols": 8, "format": "csc", "nm": (2, 4)}

#: Largest PE array side the command and this API accept.
MAX_ARRAY_SIDE = 16


def array_side(text: str) -> int:
    """An array side given as text (a command-line option): an integer from 1 to
    :data:`MAX_ARRAY_SIDE`, else ValueError saying why."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= MAX_ARRAY_SIDE:
        raise ValueError(f"must be between 1 and {MAX_ARRAY_SIDE}, got {value}")
    return value


def array_config(rows: int | None = None, cols: int | None = None, format: str | None = None,
                 nm: str | tuple[int, int] | None = None, board: str | None = None, *,
                 double_buffer: bool = False, arch: str = "zeroskip",
                 depths: dict[str, int] | None = None,
                 spell: Callable[[str], str] = str) -> ArrayConfig:
    """The :class:`ArrayConfig` for these options: a board's own configuration, or an array
    sized by :meth:`ArrayConfig.for_capacity`.

    ``depths`` sets memory depths instead of the ones :meth:`ArrayConfig.for_capacity` derives
    (keys of :data:`zeroskip.config.DEPTH_OPTIONS`: ``max_k``, ``act_depth``,
    ``weight_depth``, ``pointer_depth``, ``out_depth``, ``mask_depth``). ``spell`` names an
    option in error messages (the command passes ``--name``).

    Raises
    ------
    ValueError
        (:class:`zeroskip.sim.loaders.BadInput`) for an unknown board or format, an array side
        outside 1..16, a malformed N:M, an N:M pattern without the nm format, or array options
        given together with a board.
    """
    given = {"rows": rows, "cols": cols, "format": format, "nm": nm}
    depths = {name: value for name, value in (depths or {}).items() if value is not None}
    unknown = sorted(set(depths) - set(DEPTH_OPTIONS))
    if unknown:
        raise BadInput(f"{spell('depths')}: unknown {', '.join(unknown)} (one of "
                       f"{', '.join(DEPTH_OPTIONS)})")
    given.update(depths)
    if arch not in ARCHS:
        raise BadInput(f"{spell('arch')} must be one of {', '.join(ARCHS)}, not {arch!r}")
    if arch == "dense":
        named = [spell(name) for name in ("format", "nm") if given[name] is not None]
        if double_buffer:
            named.append(spell("double_buffer"))
        if named:
            raise BadInput(f"{spell('arch')} dense has no decoders and no double buffering: "
                             f"drop {', '.join(named)}")
    if board is not None:
        from zeroskip.platforms.boards import BOARDS
        if board not in BOARDS:
            raise BadInput(f"{spell('board')}: unknown board {board!r} (one of "
                             f"{', '.join(BOARDS)})")
        named = [spell(name) for name, value in given.items() if value is not None]
        if double_buffer:
            named.append(spell("double_buffer"))
        if named:
            raise BadInput(f"{spell('board')} {board} fixes the array configuration; drop "
                             f"{', '.join(named)}")
        try:
            return BOARDS[board].for_arch(arch).config
        except ValueError as exc:
            raise BadInput(f"{spell('board')} {board}: {exc}") from None
    options: dict[str, Any] = {name: ARRAY_DEFAULTS[name] if value is None else value
                               for name, value in given.items() if name in ARRAY_DEFAULTS}
    for side in ("rows", "cols"):
        value = options[side]
        if not isinstance(value, int) or isinstance(value, bool) or \
                not 1 <= value <= MAX_ARRAY_SIDE:
            raise BadInput(f"{spell(side)} must be an integer from 1 to {MAX_ARRAY_SIDE}, "
                             f"not {value!r}")
    if options["format"] not in FORMATS:
        raise BadInput(f"{spell('format')} must be one of {', '.join(FORMATS)}, not "
                         f"{options['format']!r}")
    pattern = options["nm"]
    if isinstance(pattern, str):
        from zeroskip.sim.formats.nm import parse
        try:
            pattern = parse(pattern)
        except ValueError as exc:
            raise BadInput(f"{spell('nm')}: {exc}") from None
    n, m = pattern
    if nm is not None and options["format"] != "nm":
        # an N:M pattern shapes only the nm format's decoders: never drop it silently
        raise BadInput(f"{spell('nm')} {n}:{m} applies only to {spell('format')} nm, not "
                         f"{spell('format')} {options['format']}")
    try:
        config = ArrayConfig.for_capacity(options["rows"], options["cols"],
                                          fmt=options["format"], nm_n=n, nm_m=m, **depths)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for name in DEPTH_OPTIONS:
            message = message.replace(name, spell(name))
        raise BadInput(message) from None
    if arch == "dense":
        # the energy table prices the zeroskip design's events; it has no dense counterpart
        return config.with_(arch="dense", energy_counters=False)
    return config.with_(double_buffer=bool(double_buffer))
