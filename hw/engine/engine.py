"""The network engine: a whole network's inference on chip, walked by a sequencer.

Block diagram (data flow of one GEMM step, :mod:`zeroskip.hw.engine.descriptor`)::

    program memory ─► sequencer ──────────────────────────────────────────┐ (step word)
    feature-map memory (in Gather) ─► gather ─► act_write ─► Accelerator   │
        ▲                                      (resident weights, job)     │
        │                                             │ result_read        │
        │                                             ▼                    │
        ├── (lookup table) ◄── output stage ◄── drain (column map) ◄───────┘
        │                 │ (to_aux)
        │                 ▼
        └── pool ◄── auxiliary map ─► out_read (the host reads the last layer's output)

Per step the sequencer fetches a word, starts the unit it names and waits for it: a GEMM step
gathers its M-tiles, runs the accelerator, drains the results through the output stage and
waits until the last activation is written; a POOL step pools the auxiliary map into the
feature-map memory; END raises ``done``. The host loads everything before ``start``: the lane
memories (resident weights), the parameter memory, the column map, the program and the input
feature map; none of it changes during an inference, so inferences follow each other with the
input map rewritten only.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import bits_for
from zeroskip.hw.accelerator import Accelerator
from zeroskip.hw.decoders import decoder_class
from zeroskip.hw.engine.descriptor import EngineParams, Step
from zeroskip.hw.engine.drain import Drain, channel_bits, tag_width
from zeroskip.hw.engine.gather import Gather
from zeroskip.hw.engine.output_stage import OutputStage, params_layout
from zeroskip.hw.engine.pool import Pool
from zeroskip.hw.layouts import read_signature, write_signature
from zeroskip.hw.memories import read_port

__all__ = ["Engine"]

#: The accelerator's per-run counters the engine sums per inference.
RUN_SUMS = ("macs_executed", "macs_gated", "lane_busy", "lane_reads", "outputs")


class Engine(wiring.Component):
    """The resident accelerator, the gather, drain, output-stage and pooling units, and the
    sequencer that walks a layer program.

    Parameters
    ----------
    params : EngineParams

    Members
    -------
    start : In(1)
        Pulse to run an inference (the program from step 0); ignored while busy.
    busy, done : Out(1)
        ``done`` rises after the END step and stays until the next start.
    counters : Out(params.counters_layout)
        Per inference (:data:`zeroskip.hw.engine.descriptor.ENGINE_COUNTERS`, and
        :data:`~zeroskip.hw.engine.descriptor.ENGINE_ENERGY_COUNTERS` with the configuration's
        ``energy_counters``).
    fault : Out(1)
        A decoder lane stopped on malformed memory contents in this inference (its results,
        and so the output, are not valid).
    program_write, params_write, colmap_write, fm_write, lut_write : In(write_signature)
        The host's loads: program words, output channels' parameter words, column-map words,
        the input feature map's activations (write only while not busy), the lookup table's
        words (with ``lut_depth``).
    <memory>_write : In(write_signature with lane mask)
        The decoder lanes' memories (the resident weights), as the accelerator's.
    out_read : In(read_signature)
        Reads the auxiliary map (the last layer's output), one cycle after ``addr``, while not
        busy.
    """

    def __init__(self, params: EngineParams):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = params
        config = params.config
        members = {
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "counters": Out(params.counters_layout),
            "fault": Out(1),
            "program_write": In(write_signature(bits_for(params.program_depth),
                                                params.step_layout)),
            "params_write": In(write_signature(bits_for(params.param_depth), params_layout())),
            "colmap_write": In(write_signature(bits_for(params.colmap_depth),
                                               channel_bits(params))),
            "fm_write": In(write_signature(bits_for(params.fm_depth), signed(8))),
            "out_read": In(read_signature(bits_for(params.aux_depth), signed(8))),
        }
        if params.lut_depth:
            members["lut_write"] = In(write_signature(bits_for(params.lut_depth), signed(8)))
        for name, (shape, depth) in decoder_class(config).memories(config).items():
            members[f"{name}_write"] = In(write_signature(
                bits_for(depth), data.ArrayLayout(shape, config.cols), mask=config.cols))
        super().__init__(members)

    @property
    def params(self) -> EngineParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        params = self._params
        config = params.config

        m.submodules.accel = accel = Accelerator(config)
        m.submodules.gather = gather = Gather(params.gather)
        m.submodules.drain = drain = Drain(params)
        m.submodules.stage = stage = OutputStage(params.param_depth, acc_width=config.acc_width,
                                                 tag_width=tag_width(params))
        m.submodules.pool = pool = Pool(params.pool)

        # the host's loads
        for name in accel.memory_names:
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_write")),
                           getattr(accel, f"{name}_write"))
        wiring.connect(m, wiring.flipped(self.params_write), stage.params_write)
        wiring.connect(m, wiring.flipped(self.colmap_write), drain.colmap_write)

        # few words, each hundreds of bits: in LUT RAM (as block RAM, 36 bits a block: 21 of
        # the ULX3S's DP16KD for a 727-bit word)
        program = memory.Memory(shape=params.step_layout, depth=params.program_depth, init=[],
                                attrs={"ram_style": "distributed"})
        m.submodules.program = program
        program_write = program.write_port()
        m.d.comb += [program_write.en.eq(self.program_write.en),
                     program_write.addr.eq(self.program_write.addr),
                     program_write.data.eq(self.program_write.data)]
        fetch = read_port(m, program, name="program")

        aux = memory.Memory(shape=signed(8), depth=params.aux_depth, init=[])
        m.submodules.aux = aux
        aux_write = aux.write_port()
        aux_read = read_port(m, aux, name="aux")

        step = Signal(params.step_layout)
        pc = Signal(bits_for(params.program_depth + 1))
        busy, done, fault = Signal(), Signal(), Signal()
        pooling = Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.fault.eq(fault),
                     fetch.addr.eq(pc)]

        # the units' settings: the current step's, held from its fetch to the next fetch
        m.d.comb += [gather.layer.eq(step.gather), accel.job.eq(step.job),
                     drain.step.eq(step), stage.settings.eq(step.settings),
                     pool.layer.eq(step.pool)]
        wiring.connect(m, gather.act_write, accel.act_write)
        wiring.connect(m, drain.result_read, accel.result_read)
        m.d.comb += accel.result_column.eq(drain.result_column)
        wiring.connect(m, drain.o, stage.i)

        # the output stage's elements, a cycle later, through the lookup table where the step
        # says (the table's read takes that cycle)
        m.d.comb += stage.o.ready.eq(1)
        addr_bits = params.map_addr_bits
        out_valid = Signal()
        out_addr = Signal(addr_bits)
        out_value = Signal(signed(8))
        late_value = Signal(signed(8), reset_less=True)
        m.d.sync += [out_valid.eq(stage.o.valid), out_addr.eq(stage.o.payload.tag[:addr_bits]),
                     late_value.eq(stage.o.payload.value)]
        if params.lut_depth:
            lut = memory.Memory(shape=signed(8), depth=params.lut_depth, init=[])
            m.submodules.lut = lut
            lut_write = lut.write_port()
            m.d.comb += [lut_write.en.eq(self.lut_write.en), lut_write.addr.eq(self.lut_write.addr),
                         lut_write.data.eq(self.lut_write.data)]
            lut_read = read_port(m, lut, name="lut")
            # channel n's entry of value v: 256 n + v + 128 (v's sign bit inverted)
            entry = Cat(stage.o.payload.value[:7], ~stage.o.payload.value[7],
                        stage.o.payload.tag[addr_bits:])
            m.d.comb += [lut_read.addr.eq(step.lut_base + entry),
                         out_value.eq(Mux(step.lut, lut_read.data, late_value))]
        else:
            m.d.comb += out_value.eq(late_value)

        # where activations land: the output stage's (either map), the pooling unit's, the
        # host's input (never at once: each writes only in its own phase)
        # (multiplexers, not If statements: Icarus leaves an `always @*` block's outputs X
        # until an operand changes)
        to_fm = out_valid & ~step.to_aux
        host = self.fm_write.en & ~busy
        m.d.comb += [
            gather.fm_write.en.eq(to_fm | pool.dst.en | host),
            gather.fm_write.addr.eq(Mux(to_fm, out_addr,
                                        Mux(pool.dst.en, pool.dst.addr, self.fm_write.addr))),
            gather.fm_write.data.eq(Mux(to_fm, out_value,
                                        Mux(pool.dst.en, pool.dst.data, self.fm_write.data))),
            aux_write.en.eq(out_valid & step.to_aux), aux_write.addr.eq(out_addr),
            aux_write.data.eq(out_value),
            pool.src.data.eq(aux_read.data), self.out_read.data.eq(aux_read.data),
            aux_read.addr.eq(Mux(pooling, pool.src.addr, self.out_read.addr)),
        ]

        # the sequencer
        counters = self.counters
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [busy.eq(1), done.eq(0), fault.eq(0), pc.eq(0)]
                    m.d.sync += [counters[name].eq(0) for name, _ in params.counters_layout]
                    m.next = "FETCH"
            with m.State("FETCH"):          # the word at pc is read
                m.next = "DECODE"
            with m.State("DECODE"):
                m.d.sync += step.eq(fetch.data)
                with m.Switch(fetch.data.kind):
                    with m.Case(Step.GEMM):
                        m.next = "GATHER_START"
                    with m.Case(Step.POOL):
                        m.d.sync += pooling.eq(1)
                        m.next = "POOL_START"
                    with m.Default():
                        m.d.sync += [busy.eq(0), done.eq(1)]
                        m.next = "IDLE"
            with m.State("GATHER_START"):
                m.next = "GATHER"
            with m.State("GATHER"):
                with m.If(gather.done):
                    m.next = "RUN_START"
            with m.State("RUN_START"):
                m.d.sync += counters.runs.eq(counters.runs + 1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(accel.done):
                    with m.If(accel.status.as_value().any()):
                        m.d.sync += fault.eq(1)
                    m.next = "DRAIN_START"
            with m.State("DRAIN_START"):
                m.next = "DRAIN"
            with m.State("DRAIN"):
                # the drain's last element accepted, and then written by the output stage
                with m.If(drain.done & ~stage.busy & ~out_valid):
                    m.d.sync += pc.eq(pc + 1)
                    if config.energy_counters:
                        # the run's counters, settled long since its done (the drain took
                        # every result after it), added to the inference's
                        m.d.sync += [counters[name].eq(counters[name] + accel.counters[name])
                                     for name in RUN_SUMS]
                    m.next = "FETCH"
            with m.State("POOL_START"):
                m.next = "POOL"
            with m.State("POOL"):
                with m.If(pool.done):
                    m.d.sync += [pc.eq(pc + 1), pooling.eq(0)]
                    m.next = "FETCH"

        # the units' starts as continuous assignments (not statements of the FSM's states,
        # whose `always @*` Icarus leaves X until an operand changes)
        m.d.comb += [gather.start.eq(fsm.ongoing("GATHER_START")),
                     accel.start.eq(fsm.ongoing("RUN_START")),
                     drain.start.eq(fsm.ongoing("DRAIN_START")),
                     pool.start.eq(fsm.ongoing("POOL_START"))]
        draining = Signal()
        m.d.comb += draining.eq(busy & (drain.busy | stage.busy | out_valid))
        with m.If(busy):
            m.d.sync += counters.cycles.eq(counters.cycles + 1)
            with m.If(accel.busy):
                m.d.sync += counters.array_cycles.eq(counters.array_cycles + 1)
            with m.If(gather.busy):
                m.d.sync += counters.gather_cycles.eq(counters.gather_cycles + 1)
            with m.If(draining):
                m.d.sync += counters.drain_cycles.eq(counters.drain_cycles + 1)
            with m.If(pool.busy):
                m.d.sync += counters.pool_cycles.eq(counters.pool_cycles + 1)
        if config.energy_counters:
            self._count_events(m, busy, gather, drain, stage, pool, out_valid)
        return m

    def _count_events(self, m, busy, gather, drain, stage, pool, out_valid):
        """The engine's own counts of :data:`~zeroskip.hw.engine.descriptor.
        ENGINE_ENERGY_COUNTERS` (the accelerator's are summed at each run's end)."""
        config, counters = self._params.config, self.counters
        with m.If(busy):
            # an activation beat writes one byte into every PE of its row: rows × cols copies,
            # as the accelerator's act_writes counts (which counts since reset, not per run)
            with m.If(gather.act_write.en):
                m.d.sync += counters.act_writes.eq(counters.act_writes +
                                                   config.rows * config.cols)
            with m.If(drain.o.valid & stage.i.ready):
                m.d.sync += counters.stage_elements.eq(counters.stage_elements + 1)
            with m.If(out_valid | pool.dst.en):
                m.d.sync += counters.map_writes.eq(counters.map_writes + 1)
