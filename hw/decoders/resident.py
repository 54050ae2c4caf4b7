"""A resident lane's bases (:attr:`~zeroskip.config.ArrayConfig.resident`): where the run's
layer lies in the lane's memories, latched at start with the run's other settings."""

from amaranth.hdl import Mux, Signal

from zeroskip.hw.layouts import resident_bases

__all__ = ["latch_bases"]


def latch_bases(m, lane, run):
    """Latch ``lane``'s job bases at start (in ``m``) and set on ``run`` (the lane's latched
    settings) what the walk needs of them from registers: ``column_first``, the layer's first
    column; ``column_end_first``, its end pointer's address; ``column_end``, the column after
    the layer's last (so no adder follows a decision); and ``restart_at``, each base's value
    for a restart: the job's in the start cycle (a reader restarts then), the latched one at
    later M-tiles. As with the other settings, a lane without columns latches nothing, so
    that each lane keeps its own copy."""
    enable = lane.start & (lane.columns != 0)
    for name in resident_bases(lane.config):
        port = getattr(lane, name)
        latched = Signal.like(port, name=f"{name}_run")
        with m.If(enable):
            m.d.sync += latched.eq(port)
        run.restart_at[name] = Mux(lane.start, port, latched)
    if "column_base" not in run.restart_at:
        return
    base = lane.column_base
    end_first = Signal(len(base) + 1, name="column_end_first_run")
    end = Signal(len(base) + 1, name="column_end_run")
    with m.If(enable):
        m.d.sync += [end_first.eq(base + 1), end.eq(base + lane.columns)]
    run.column_first = run.restart_at["column_base"]
    run.column_end_first = Mux(lane.start, base + 1, end_first)
    run.column_end = end
