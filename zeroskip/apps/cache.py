"""The simulator cache (``$ZEROSKIP_CACHE``, default ``~/.cache/zeroskip``): list, limit, clear.

An entry is one simulator build (a folder per simulator, configuration, gateware version and
trace setting: about 140 MB for an 8×8 array on Verilator), a generated Verilog file, a kept
failure log or a board build. Its last use is when a run last reused it. Eviction removes the
least recently used entries first and never one whose build is in progress (its lock is held).
"""

from __future__ import annotations

import fcntl
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_LIMIT", "Entry", "entries", "evict", "clear", "parse_size", "format_size"]

#: What the command keeps the cache to after it built something (``ZEROSKIP_CACHE_LIMIT``
#: overrides it; ``0`` or ``none`` turns the automatic eviction off).
DEFAULT_LIMIT = 4 * 1024**3

#: Folders of the cache whose every item is an entry of its own.
GROUPS = ("verilog", "logs", "boards")

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``"2G"``, ``"500M"``, ``"1.5GiB"``, ``"123"`` (bytes) -> bytes; binary units."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a size like 2G, 500M or 123456, not {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            pass
    return total


def _last_used(path: Path) -> float:
    marker = path / "complete"
    try:
        return (marker if marker.exists() else path).stat().st_mtime
    except OSError:
        return 0.0


@dataclass
class Entry:
    path: Path
    size: int
    last_used: float

    @property
    def name(self) -> str:
        return str(self.path.relative_to(self.path.parent.parent)) \
            if self.path.parent.name in GROUPS else self.path.name


def cache_root() -> Path:
    from zeroskip.sim.rtl.cache import cache_root as root
    return root()


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the cache, least recently used first."""
    root = cache_root() if root is None else root
    if not root.is_dir():
        return []
    items: list[Path] = []
    for child in root.iterdir():
        if child.name in GROUPS and child.is_dir():
            items += [item for item in child.iterdir() if not item.name.startswith(".")]
        elif not child.name.startswith("."):
            items.append(child)
    found = [Entry(item, _size(item), _last_used(item)) for item in items]
    return sorted(found, key=lambda e: e.last_used)


def _remove(entry: Entry) -> bool:
    """Remove an entry unless its build is in progress; True if it was removed."""
    lock = entry.path / ".lock"
    if entry.path.is_dir() and lock.exists():
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            shutil.rmtree(entry.path, ignore_errors=True)
            return True
    if entry.path.is_dir() and not entry.path.is_symlink():
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        entry.path.unlink(missing_ok=True)
    return True


def evict(limit: int, *, keep: tuple[Path, ...] = (), min_age: float = 0.0,
          root: Path | None = None) -> list[Entry]:
    """Remove least recently used entries until the cache holds at most ``limit`` bytes;
    never ``keep`` nor an entry used in the last ``min_age`` seconds. Returns what went."""
    found = entries(root)
    total = sum(e.size for e in found)
    keep_resolved = {Path(p).resolve() for p in keep}
    now = time.time()
    removed = []
    for entry in found:
        if total <= limit:
            break
        if entry.path.resolve() in keep_resolved or now - entry.last_used < min_age:
            continue
        if _remove(entry):
            total -= entry.size
            removed.append(entry)
    return removed


def clear(root: Path | None = None) -> list[Entry]:
    """Remove every entry (except builds in progress); returns what went."""
    return evict(-1, root=root)
