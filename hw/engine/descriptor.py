"""The network engine's sizes and its layer program's word: what the host compiler
(:mod:`zeroskip.sim.program`) needs to compile a network for an engine without building it.

A program is a list of steps, one word each in the engine's program memory
(:func:`step_layout`), walked in order by the sequencer (:mod:`zeroskip.hw.engine.engine`):

``GEMM``
    One run of the resident accelerator: the gather unit writes the run's M-tiles of the
    layer's im2col matrix from the feature map into the activation memories (``gather``), the
    accelerator runs ``job`` (its bases select the layer's resident weights), and the drain
    reads every result through the output stage (``settings``; the channel's parameter word
    at ``param_base + n``) into a feature map, HWC: output pixel ``p``, channel ``n`` at
    ``pixel_first + (p - first pixel of the run) * channels + n``, in the gather unit's
    feature-map memory or (``to_aux``) the auxiliary map (pooling's source, the host's output).
    Lane ``c``'s ``j``-th column is output channel ``colmap[colmap_base + c * lane_stride + j]``.
    With ``lut``, each output ``v`` of channel ``n`` becomes ``table[lut_base + 256 n + v + 128]``
    before it is written.
``POOL``
    The pooling unit from the auxiliary map into the feature-map memory (``pool``).
``END``
    The inference is over: ``done`` rises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data

from zeroskip.config import ArrayConfig, bits_for
from zeroskip.hw.engine.gather import GatherParams
from zeroskip.hw.engine.output_stage import settings_layout
from zeroskip.hw.engine.pool import PoolParams
from zeroskip.hw.layouts import job_layout

__all__ = ["Step", "EngineParams", "ENGINE_COUNTERS", "ENGINE_ENERGY_COUNTERS"]


class Step(enum.IntEnum):
    """What a program word does."""
    END = 0
    GEMM = 1
    POOL = 2


#: The engine's hardware counters, per inference (cleared at start), in port order.
ENGINE_COUNTERS = (
    "cycles",           # start to done
    "array_cycles",     # cycles the accelerator was busy (the sum of its runs)
    "gather_cycles",    # cycles the gather unit was busy
    "drain_cycles",     # cycles from a run's done to its last activation written
    "pool_cycles",      # cycles the pooling unit was busy
    "runs",             # accelerator runs
)

#: With the accelerator's ``energy_counters``, the events per inference the energy estimate
#: prices (:func:`zeroskip.sim.energy.resident_events`), after :data:`ENGINE_COUNTERS`.
ENGINE_ENERGY_COUNTERS = (
    "macs_executed",    # the accelerator's per-run counters, summed over the inference's runs
    "macs_gated",
    "lane_busy",        # tokens the decoder lanes emitted
    "lane_reads",       # lane-memory words the decoder lanes read
    "outputs",          # outputs the lanes closed (each writes a result word per PE row)
    "act_writes",       # activation bytes the gather wrote into the PEs' memories (each copy)
    "stage_elements",   # results the drain read and passed through the output stage
    "map_writes",       # activations written into either feature map (output stage, pooling)
)


@dataclass(frozen=True)
class EngineParams:
    """The sizes of a network engine.

    Parameters
    ----------
    config : ArrayConfig
        The accelerator's, with ``resident=True`` (so not double-buffered).
    fm_depth : int
        Activations of the gather unit's feature-map memory (every map a layer reads).
    aux_depth : int
        Activations of the auxiliary map (a pooled layer's map before pooling; the last
        layer's output, which the host reads).
    param_depth : int
        Output channels' parameter words of all layers.
    colmap_depth : int
        Words of the column map (per layer, its lanes' columns' output channels).
    program_depth : int
        Steps of the program memory.
    lut_depth : int
        Words of the lookup table (0: none), 256 per output channel that has one: a layer's
        second requantization (an ONNX ``DequantizeLinear → Add → QuantizeLinear`` after its
        fused one) tabulated per channel, int8 to int8, applied after the output stage.
    gather_ports : int
        Read ports of the gather unit's feature-map memory (a divisor of ``rows``; 0: ``rows``,
        an activation of every row a cycle). Each port is a copy of the memory in block RAM
        (16 ports of an 8,192-activation map would take 64 of the ULX3S's DP16KD); fewer
        ports gather a tile in proportionally more cycles.
    """
    config: ArrayConfig
    fm_depth: int = 1024
    aux_depth: int = 1024
    param_depth: int = 64
    colmap_depth: int = 64
    program_depth: int = 16
    lut_depth: int = 0
    gather_ports: int = 0

    def __post_init__(self):
        config = self.config
        if not getattr(config, "resident", False):
            raise ValueError("the engine needs a configuration with resident=True")
        if config.double_buffer:
            raise ValueError("the engine is built for resident lanes without double "
                             "buffering")
        for name in ("fm_depth", "aux_depth", "param_depth", "colmap_depth", "program_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.lut_depth, int) or self.lut_depth < 0 or self.lut_depth % 256:
            raise TypeError(f"lut_depth must be a multiple of 256 (0: no lookup table), not "
                            f"{self.lut_depth!r}")

    @property
    def gather(self) -> GatherParams:
        return GatherParams.for_config(self.config, self.fm_depth, ports=self.gather_ports)

    @property
    def pool(self) -> PoolParams:
        # one unit for both maps: addresses as wide as the larger one
        return PoolParams(max(self.fm_depth, self.aux_depth))

    @property
    def map_addr_bits(self) -> int:
        """Bits of a drain's write address (either map)."""
        return bits_for(max(self.fm_depth, self.aux_depth))

    @property
    def max_channels(self) -> int:
        """Largest output channel count a step can describe."""
        return (1 << self.gather.dim_bits) - 1

    @property
    def step_layout(self) -> data.StructLayout:
        """A program word (see the module's docstring)."""
        config = self.config
        addr = self.map_addr_bits
        return data.StructLayout({
            "kind": Step,
            "to_aux": 1,
            "gather": self.gather.descriptor_layout,
            "job": job_layout(config),
            "settings": settings_layout(),
            "param_base": unsigned(bits_for(self.param_depth)),
            "colmap_base": unsigned(bits_for(self.colmap_depth)),
            "lane_stride": unsigned(bits_for(self.colmap_depth + 1)),
            "channels": unsigned(addr + 1),
            "tile_step": unsigned(addr + 1),
            "pixel_first": unsigned(addr),
            "pool": self.pool.descriptor_layout,
            "lut": 1,
            "lut_base": unsigned(bits_for(max(self.lut_depth, 1))),
        })

    @property
    def counters_layout(self) -> data.StructLayout:
        names = ENGINE_COUNTERS + (ENGINE_ENERGY_COUNTERS if self.config.energy_counters
                                   else ())
        return data.StructLayout({name: unsigned(self.config.counter_width) for name in names})

    def digest(self) -> str:
        """A hex digest of the engine (its configuration and memories): what a board behind
        the host link reports, so the host knows what it talks to."""
        import hashlib
        return hashlib.sha256(self.name().encode()).hexdigest()

    def name(self) -> str:
        """A name for builds of this engine."""
        return (f"engine-{self.config.name()}-fm{self.fm_depth}-aux{self.aux_depth}"
                f"-p{self.param_depth}-c{self.colmap_depth}-s{self.program_depth}"
                f"-l{self.lut_depth}" + (f"-g{self.gather_ports}" if self.gather_ports else ""))
