"""The host runtime of a board's network engine: a compiled network
(:func:`zeroskip.sim.program.compile_network`) loaded once through the link, then inferences,
each its input map written, a RUN and the output map read (:mod:`zeroskip.hw.link.protocol`;
the engine's targets and reports: :func:`zeroskip.hw.link.device.engine_device`).

:class:`EngineLink` is :class:`~zeroskip.platforms.runtime.BoardLink` with the engine's
targets, so every request is framed, CRC-checked by the board (a damaged frame writes
nothing and is sent again) and retried the same way; the cocotb board bench drives it over
the simulated UART, :func:`run_engine_on_board` over a serial port.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from zeroskip.hw.layouts import unpack
from zeroskip.hw.link.device import ENGINE_JOB_BITS, engine_device
from zeroskip.hw.link.protocol import Command, byte_count
from zeroskip.platforms.runtime import BoardLink, SerialTransport

__all__ = ["EngineLink", "EngineInference", "NetworkRun", "cycles_bound", "run_network",
           "run_engine_on_board"]


class EngineInference:
    """One inference through the link: the output map (HWC int8, flattened), the engine's
    counters, its fault flag, and the link's byte counts (received, sent) when the RUN
    started, from the board's own counters."""

    def __init__(self, output, counters, fault, link_rx, link_tx):
        self.output, self.counters, self.fault = output, counters, fault
        self.link_rx, self.link_tx = link_rx, link_tx


@dataclass
class NetworkRun:
    """A network's inferences through a board's link: one :class:`EngineInference` per input
    (``runs``), the link's retries and their causes, and from a simulated board the cycles
    from the first request to the last reply and the faults injected on the way."""
    runs: list
    retries: int = 0
    causes: dict = field(default_factory=dict)
    cycles: int | None = None
    injected: list = field(default_factory=list)

    @property
    def link_rx(self) -> list:
        """Per inference, the bytes the board had received when its RUN started."""
        return [run.link_rx for run in self.runs]

    @property
    def link_tx(self) -> list:
        """Per inference, the bytes the board had sent when its RUN started."""
        return [run.link_tx for run in self.runs]


def cycles_bound(program) -> int:
    """A bound on an inference's cycles for RUN's timeout: the array's predicted cycles and
    generous room for gathering, draining and pooling every map."""
    from zeroskip.sim.program import predicted_array_cycles
    return 8 * predicted_array_cycles(program) + 64 * sum(
        layer.height * layer.width * layer.channels for layer in program.layers) + 100_000


class EngineLink(BoardLink):
    """The protocol driver for a board whose link drives a network engine of ``params``."""

    def __init__(self, transport, params, **options):
        super().__init__(transport, params.config, **options)
        self.params = params
        device = engine_device(params)
        self._targets = device.targets
        self._report = device.report_layout
        self._index = {name: index for index, (name, *_) in enumerate(device.targets)}
        self.digest = device.digest

    async def load(self, program):
        """Write a compiled network's lane memories, program, parameters, column map and
        lookup table (everything but the input map)."""
        if program.params != self.params:
            raise ValueError("the network was compiled for another engine")
        beats = program.beats()
        for name, lane_beats in beats["lanes"].items():
            if lane_beats:
                await self.write(self._index[name], lane_beats)
        for name in ("program", "params", "colmap", "lut"):
            if beats[name]:
                await self.write(self._index[name], beats[name])

    async def infer(self, program, x, cycles_bound) -> EngineInference:
        """One inference of the loaded ``program`` on input map ``x``. After a lane fault
        (``fault``) the output map is not read: it is not valid."""
        await self.write(0, program.input_beats(x))
        raw = await self.request(Command.RUN, bytes(byte_count(ENGINE_JOB_BITS)),
                                 work_seconds=cycles_bound / self.clock_hz,
                                 reply_bytes=byte_count(self._report.size))
        report = unpack(self._report, int.from_bytes(raw, "little"))
        fault = bool(report["status"])
        output = np.zeros(0, dtype=np.int8) if fault else await self.read_map(program.output_size)
        return EngineInference(output, report["counters"], fault, report["link_rx"],
                               report["link_tx"])

    async def read_map(self, count):
        """The first ``count`` activations of the output map (int8)."""
        values = bytearray()
        for addr in range(0, count, 0xFFFF):
            n = min(0xFFFF, count - addr)
            values += await self.request(Command.READ, bytes([0]) + addr.to_bytes(2, "little") +
                                         n.to_bytes(2, "little"), reply_bytes=n)
        return np.frombuffer(bytes(values), dtype=np.int8).copy()


async def run_network(link, program, inputs):
    """Connect (INFO checks the engine's digest, RESET), load ``program`` once, then one
    :class:`EngineInference` per input map."""
    if not link.connected:
        await link.connect()
    await link.load(program)
    bound = cycles_bound(program)
    return [await link.infer(program, x, bound) for x in inputs]


def run_engine_on_board(program, inputs, port, *, baud, retries=8) -> NetworkRun:
    """:func:`run_network` on the board at serial ``port``. A link that fails (even after
    retries) raises :class:`~zeroskip.platforms.runtime.LinkError`."""
    transport = SerialTransport(port, baud)
    try:
        link = EngineLink(transport, program.params, retries=retries)
        runs = asyncio.run(run_network(link, program, inputs))
        return NetworkRun(runs=runs, retries=link.stats.retries, causes=dict(link.stats.causes))
    finally:
        transport.close()

