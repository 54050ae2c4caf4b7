"""The analytical cycle model: what the RTL's cycle counter must read, without simulating it.

A run costs the cycles of its busiest decoder lane (lanes never wait on each other until the end;
a lane's cycles are its tokens plus its format's fetch cycles, from the cursor models of
:mod:`zeroskip.sim.formats`) plus a fixed fill/drain:

- 1 cycle for a lane to register its first token (none when no lane has work);
- ``config.array_latency`` cycles for the last token to walk down its column and the PE's
  fetch/multiply/accumulate pipeline (``config.pe_latency`` stages) to write the last result;
- 2 cycles for the registered counters and ``done``.

A pipelined lane also refills its prefetch queues at the start of every M-tile
(``config.lane_refill_cycles``); the compiler counts that in the lane's cycles.
"""

__all__ = ["run_cycles", "fill_drain_cycles", "ideal_cycles", "mapped_ideal_cycles",
           "run_transfers", "overlapped_cycles"]


def fill_drain_cycles(config):
    """Cycles of a run beyond its busiest lane's tokens (for the dense baseline: the start,
    and its drain, :func:`zeroskip.hw.dense.dense_drain_cycles`)."""
    if config.arch == "dense":
        from zeroskip.hw.dense import dense_drain_cycles
        return dense_drain_cycles(config) + 1
    return config.array_latency + 3


def run_cycles(config, lane_cycles):
    """Cycles of one run whose decoder lanes are busy ``lane_cycles`` cycles each."""
    busiest = max(lane_cycles, default=0)
    if busiest == 0 and config.arch == "dense":
        return fill_drain_cycles(config)
    if busiest == 0:
        return fill_drain_cycles(config) - 1
    return busiest + fill_drain_cycles(config)


def ideal_cycles(macs, pe_count):
    """The work-proportional bound: ``macs`` multiply-accumulates spread perfectly over
    ``pe_count`` PEs, ``ceil(macs / pe_count)`` (Eyexam, Sparseloop)."""
    return -(-int(macs) // pe_count)


def mapped_ideal_cycles(weights, m, rows, cols):
    """The bound this array's mapping allows for an ``m``-row GEMM with ``weights``: every
    nonzero of W costs one cycle of one PE column for each of the ``ceil(m / rows)`` M-tiles
    (all rows of a tile take it together), the columns of W are spread over at most ``cols``
    lanes and a column is never split. With ``m < rows`` (a GEMV) PE rows idle, and with fewer
    nonzero columns than ``cols`` PE columns idle, so this can be far above
    :func:`ideal_cycles`; the array can reach it."""
    import numpy as np
    per_column = np.count_nonzero(weights, axis=0)
    busy_columns = int(np.count_nonzero(per_column))
    if not busy_columns:
        return 0
    tiles = -(-m // rows)
    return tiles * max(-(-int(per_column.sum()) // min(cols, busy_columns)),
                       int(per_column.max()))


def run_transfers(program):
    """Per run of ``program``: ``(load beats, readback beats)`` with every memory port written
    at once (a run's load takes as long as its longest port's beats) and the result port read
    one word per cycle, column after column."""
    from zeroskip.sim.rtl.packing import weight_beats
    transfers = []
    for run in program.runs:
        lanes = [len(beats) for beats in weight_beats(program.config, run).values()]
        load = max([run.acts.shape[1]] + lanes)
        readback = sum(run.m_tiles * len(columns) for columns in run.lane_columns)
        transfers.append((load, readback))
    return transfers


#: cycles a double-buffered run's stage takes beyond its compute: the start pulse
STAGE_OVERHEAD = 1


def overlapped_cycles(compute, transfers):
    """End-to-end cycles of double-buffered runs (:attr:`ArrayConfig.double_buffer`): the
    first run's load, then per run the longest of its compute, the next run's load and the
    previous run's read-back (they overlap), then the last run's read-back. ``compute``: each
    run's cycles; ``transfers``: :func:`run_transfers`."""
    loads = [load for load, _ in transfers]
    readbacks = [readback for _, readback in transfers]
    total = loads[0]
    for i, cycles in enumerate(compute):
        total += max(cycles + STAGE_OVERHEAD, loads[i + 1] if i + 1 < len(loads) else 0,
                     readbacks[i - 1] if i else 0)
    return total + readbacks[-1]
