"""The Dask cluster a sweep runs on: :func:`connect` gives a client of a new ``LocalCluster``
on this machine, or of an existing scheduler whose workers are checked to run the same
zeroskip and gateware sources (:func:`worker_info`)."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from zeroskip.apps.sweep.errors import bad_input, first_line

__all__ = ["connect", "worker_info", "default_workers"]


def worker_info() -> tuple[str, str]:
    """What a worker runs (checked against this machine's before a sweep): zeroskip's version
    and the gateware sources' digest. Run on every worker by ``Client.run``."""
    from zeroskip import __version__
    from zeroskip.sim.rtl.cache import gateware_digest
    return __version__, gateware_digest()


def default_workers() -> int:
    """The local cluster's workers: one per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None,
            timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``scheduler`` (a cluster failure,
    :class:`zeroskip.api.DeviceFailure`, if it cannot be reached in ``timeout`` seconds or has
    no worker with this zeroskip), or to a new ``LocalCluster`` of ``workers`` single-threaded
    worker processes (default one per core), closed on exit. ``timeout``: default Dask's
    ``distributed.comm.timeouts.connect`` (30 s; environment variable
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``)."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client, LocalCluster

    from zeroskip.api import DeviceFailure
    if timeout is None:
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"),
                                  default="seconds")

    quiet = logging.ERROR
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(quiet)
    if scheduler is None:
        with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                          processes=True, dashboard_address=None, silence_logs=quiet) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(scheduler, timeout=timeout)
    except ValueError as exc:  # a malformed address
        raise bad_input(f"--scheduler: {first_line(exc)}") from None
    except (OSError, TimeoutError) as exc:
        raise DeviceFailure(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                            f"({(str(exc).splitlines() or [''])[0] or type(exc).__name__})") \
            from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise DeviceFailure(f"--scheduler {scheduler}: the cluster has no worker (start "
                                f"some: dask worker {scheduler})") from None
        try:
            infos = client.run(worker_info)
        except Exception as exc:
            raise DeviceFailure(f"--scheduler {scheduler}: a worker cannot run zeroskip "
                                f"({first_line(exc)}); install the same zeroskip on every "
                                f"worker") from None
        mine = worker_info()
        for address, info in infos.items():
            if tuple(info) != mine:
                raise DeviceFailure(
                    f"--scheduler {scheduler}: worker {address} runs zeroskip {info[0]} with "
                    f"gateware {info[1]}, this machine {mine[0]} with {mine[1]}: install the "
                    f"same zeroskip on every worker")
        yield client
    finally:
        client.close()

