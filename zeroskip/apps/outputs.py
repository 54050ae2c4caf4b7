"""A command's output files: checked before any work, written all together or not at all.

One rule for every command's outputs, files and folders alike: missing folders on the way are
created (when the output is written, never by a check); a path whose existing part is a file,
a path that is a folder where a file is wanted, or a folder that cannot be written is refused.

``check_file`` / ``check_folder`` find an output that cannot be written before a simulation
starts: bad input, exit 2. :class:`Outputs` stages every file of a command beside its target
(creating the target's missing folders) and moves them into place only when all of them are
written; a failure on the way leaves none of them behind (a file that existed before is
restored, a folder it created is removed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["check_file", "check_folder", "Outputs"]


def _bad_input(message: str) -> Exception:
    from zeroskip.sim.loaders import BadInput
    return BadInput(message)


def _probe(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder``: the only test that also holds for root, for a
    read-only file system and for a full disk's quota."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".zeroskip-probe-")
    except OSError as exc:
        raise _bad_input(f"{what}: cannot write to {folder} "
                         f"({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(name)


def _existing_folder(path: Path, what: str, shown: Path) -> Path:
    """The nearest existing folder at or above ``path`` (the one missing folders would be
    created in); BadInput when that nearest existing path is a file."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _bad_input(f"{what}: {shown} cannot be written: {existing} is a file, not a "
                         f"folder")
    return existing


def check_file(path: str | os.PathLike, what: str) -> None:
    """Raise BadInput (naming the option ``what``) unless ``path`` can be written as a file,
    its missing folders created. Nothing is created here."""
    path = Path(path)
    if path.is_dir():
        raise _bad_input(f"{what}: {path} is a directory; expected a file name")
    existing = _existing_folder(path.resolve().parent, what, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise _bad_input(f"{what}: {path} is read-only")
    _probe(existing, what)


def check_folder(path: str | os.PathLike, what: str) -> None:
    """Raise BadInput unless ``path`` is a writable folder or one that can be created (with its
    missing parents). Nothing is created here."""
    resolved = Path(path).resolve()
    _probe(_existing_folder(resolved, what, resolved), what)


class Outputs:
    """Files written together: each is staged in a temporary file beside its target;
    :meth:`commit` moves them all into place. Used as a context manager, an exception discards
    whatever was staged."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._made: list[Path] = []  # folders created for the targets, outermost first

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary file for ``target``, in its folder, ending like it (a simulator picks
        the trace format from the name). The target's missing folders are created."""
        target = Path(target)
        folder = target.resolve().parent
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._made.append(folder)
        fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.",
                                   suffix=target.suffix)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; an output file is not
        self._staged.append((Path(tmp), target))
        return Path(tmp)

    def write(self, target: str | os.PathLike, write: Callable[[Path], object]) -> None:
        """Stage ``target``: ``write(tmp)`` writes its contents to the temporary file."""
        write(self.path(target))

    def write_text(self, target: str | os.PathLike, text: str) -> None:
        self.write(target, lambda tmp: tmp.write_text(text))

    def commit(self, only: str | os.PathLike | None = None) -> None:
        """Move the staged files (or just ``only``) into place, all of them or none."""
        chosen = [(tmp, target) for tmp, target in self._staged
                  if only is None or target == Path(only)]
        moved: list[tuple[Path, Path | None]] = []  # (target, backup of what it replaced)
        try:
            for tmp, target in chosen:
                backup = None
                if target.exists():
                    backup = tmp.with_name(tmp.name + ".old")
                    os.link(target, backup)
                os.replace(tmp, target)
                moved.append((target, backup))
        except BaseException:
            for target, backup in reversed(moved):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            raise
        finally:
            for _, backup in moved:
                if backup is not None:
                    backup.unlink(missing_ok=True)
            self._staged = [entry for entry in self._staged if entry not in chosen]
            for tmp, _ in chosen:
                tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove whatever is staged, and the folders created for it that stayed empty."""
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:  # it holds a committed file (or someone else's): it stays
                pass
        self._made = []

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()
