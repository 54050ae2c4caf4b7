"""What a command shows while it works: the runner's slow steps (the ``zeroskip.progress``
logger) on a terminal, and the simulator builds it made (for the cache's automatic limit)."""

import logging
import os
import shutil
import sys
import threading
import time

__all__ = ["Progress", "Builds", "attach", "detach"]


class Progress(logging.Handler):
    """Shows the runner's slow steps (``zeroskip.progress``) on a terminal.

    ``ticker``: one line per step, rewritten in place every second with the seconds spent and
    closed with the step's total; a step over in less than ``delay`` seconds shows nothing.
    Otherwise (under the demo's and bench's progress bars) each message is one line, written
    through tqdm so that the bars stay intact."""

    def __init__(self, stream, *, ticker=True, delay=0.5):
        super().__init__(logging.INFO)
        self.stream, self.ticker, self.delay = stream, ticker, delay
        self.step = None     # (message, start time)
        self.shown = False
        self.guard = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        if ticker:
            self.thread.start()

    def emit(self, record):
        message = record.getMessage()
        if not self.ticker:
            # under progress bars: a build's start and end only (the bars show the runs)
            if getattr(record, "kind", None) in ("build", "wait") and \
                    (record.step == "start" or record.kind == "build"):
                from tqdm import tqdm
                tqdm.write(f"zeroskip: {message}", file=self.stream)
            return
        with self.guard:
            self._end()
            if getattr(record, "step", None) == "start":
                self.step, self.shown = (message, time.monotonic()), False

    def _draw(self, final=False):
        message, started = self.step
        elapsed = time.monotonic() - started
        if not final and elapsed < self.delay:
            return
        tail = f" ... done in {elapsed:.0f} s" if final else f" ... {elapsed:.0f} s"
        # one terminal line, or the carriage return cannot rewrite it
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):
            columns = shutil.get_terminal_size().columns
        room = columns - len(tail) - len("zeroskip: ") - 1
        if len(message) > room:
            message = message[:max(room - 1, 10)] + "…"
        self.stream.write(f"\r\x1b[Kzeroskip: {message}{tail}{chr(10) if final else ''}")
        self.stream.flush()
        self.shown = True

    def _end(self):
        if self.step is not None and self.shown:
            self._draw(final=True)
        self.step = None

    def _tick(self):
        while not self.stopping.wait(1.0 if self.shown else max(self.delay, 0.1)):
            with self.guard:
                if self.step is not None:
                    self._draw()

    def close(self):
        self.stopping.set()
        with self.guard:
            self._end()
        super().close()


class Builds(logging.Handler):
    """Records the simulator builds a command made (for the cache's automatic limit)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.folders = []

    def emit(self, record):
        if getattr(record, "build_dir", None):
            self.folders.append(record.build_dir)


def attach(command):
    """The progress logger's handlers for this command: the build recorder, and the display
    when stderr is a terminal."""
    logger = logging.getLogger("zeroskip.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = [Builds()]
    if sys.stderr.isatty():
        handlers.append(Progress(sys.stderr, ticker=command not in ("demo", "bench")))
    for handler in handlers:
        logger.addHandler(handler)
    return handlers


def detach(handlers):
    logger = logging.getLogger("zeroskip.progress")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
