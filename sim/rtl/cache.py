"""The simulator build cache: where builds are kept, what keys them, and the locks that let
parallel processes share one build.

Builds are cached under ``$ZEROSKIP_CACHE`` (default ``~/.cache/zeroskip``), one folder per
simulator, configuration and wave setting (:func:`zeroskip.sim.rtl.build.build`), guarded by a
file lock (:func:`locked`) so parallel test workers share one build; ``zeroskip cache`` lists,
limits and clears them. A build's name carries :func:`gateware_digest` (or, for the bus tops,
:func:`bus_digest`), so an edit to the gateware never reuses a stale build. The logs of failed
builds and simulations are kept under ``logs/`` (:func:`keep_log`).
"""

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cache_root", "gateware_sources", "gateware_digest", "bus_digest", "locked",
           "keep_log"]

#: Progress of the slow steps (:mod:`zeroskip.sim.rtl`): here, waiting for another process's
#: build.
progress = logging.getLogger("zeroskip.progress")


def cache_root():
    return Path(os.environ.get("ZEROSKIP_CACHE", Path.home() / ".cache" / "zeroskip"))


def gateware_sources():
    """The files :func:`gateware_digest` hashes: every gateware source (:mod:`zeroskip.hw` and
    its subpackages) except the bus tops', the configuration, and the simulator build's flags
    and patches (:mod:`zeroskip.sim.rtl.build`)."""
    from zeroskip import config, hw
    folder = Path(hw.__file__).parent
    # the bus tops are not part of any other build: their builds add bus_digest() to their name
    paths = [p for p in sorted(folder.rglob("*.py")) if "bus" not in p.relative_to(folder).parts]
    return paths + [Path(config.__file__), Path(__file__).with_name("build.py")]


def gateware_digest():
    """Hash of the gateware sources, the simulator build's flags (:func:`gateware_sources`) and
    the Amaranth version: a cached build is reused only if the configuration and everything
    that shapes it are unchanged."""
    import amaranth
    digest = hashlib.sha256(amaranth.__version__.encode())
    for path in gateware_sources():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def bus_digest():
    """Hash of the bus tops' sources (:mod:`zeroskip.hw.bus`), for their builds' names."""
    from zeroskip.hw import bus
    digest = hashlib.sha256()
    for path in sorted(Path(bus.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


@contextmanager
def locked(path, waiting=None):
    """Hold ``path``/.lock; ``waiting``: what to report while another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                progress.info(waiting, extra={"step": "start", "kind": "wait"})
            fcntl.flock(lock, fcntl.LOCK_EX)
            if waiting:
                progress.info("done waiting", extra={"step": "end", "kind": "wait"})
        path.mkdir(parents=True, exist_ok=True)  # `zeroskip cache clear` may have removed it
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def keep_log(log, name):
    """Copy a failed build's or simulation's whole log to ``$ZEROSKIP_CACHE/logs/<name>-<time>-
    <random>.log``, where nothing deletes or overwrites it; returns that path."""
    folder = cache_root() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    fd, kept = tempfile.mkstemp(prefix=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-",
                                suffix=".log", dir=folder)
    os.close(fd)
    shutil.copyfile(log, kept)
    return Path(kept)
