"""The network engine behind the host link: :class:`LinkedEngine` gives the engine
(:class:`zeroskip.hw.engine.engine.Engine`) the accelerator's member names, which is what
:class:`~zeroskip.hw.link.host_link.HostLink` drives (:func:`zeroskip.hw.link.device.
engine_device` describes the targets, RUN and READ)."""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import bits_for
from zeroskip.hw.engine.engine import Engine
from zeroskip.hw.layouts import read_signature
from zeroskip.hw.link.device import engine_targets

__all__ = ["LinkedEngine"]


class LinkedEngine(wiring.Component):
    """The engine with the accelerator's names: ``act_write`` is the input feature map's
    write port, ``memory_names`` the lane memories, ``program``, ``params``, ``colmap`` (and
    ``lut``), ``status`` the fault flag, ``result_read`` the output map's read port (one
    column: ``result_column`` has no bits); ``job`` is RUN's reserved byte, ignored."""

    def __init__(self, params):
        self._params = params
        self._engine = Engine(params)
        engine = self._engine
        # in the link's target order (after the input map, which is `act_write`)
        self.memory_names = [name for name, *_ in engine_targets(params)[1:]]
        members = {
            "start": In(1), "job": In(8), "busy": Out(1), "done": Out(1),
            "counters": Out(params.counters_layout), "status": Out(data.ArrayLayout(1, 1)),
            "act_write": engine.signature.members["fm_write"],
            "result_read": In(read_signature(bits_for(params.aux_depth),
                                             data.ArrayLayout(unsigned(8), 1))),
            "result_column": In(range(1)),
        }
        for name in self.memory_names:
            members[f"{name}_write"] = engine.signature.members[f"{name}_write"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine
        m.d.comb += [engine.start.eq(self.start), self.busy.eq(engine.busy),
                     self.done.eq(engine.done), self.counters.eq(engine.counters),
                     self.status[0].eq(engine.fault),
                     engine.out_read.addr.eq(self.result_read.addr),
                     self.result_read.data[0].eq(engine.out_read.data)]
        wiring.connect(m, wiring.flipped(self.act_write), engine.fm_write)
        for name in self.memory_names:
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_write")),
                           getattr(engine, f"{name}_write"))
        return m
