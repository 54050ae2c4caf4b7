"""What the host link drives: the accelerator (a GEMM per RUN) or the network engine (an
inference per RUN), described by :class:`LinkDevice` so that
:class:`~zeroskip.hw.link.host_link.HostLink`, its frames and the host
(:mod:`zeroskip.platforms.runtime`) share one description of the targets, the RUN payload and
reply, and the READ port.

The device component has the accelerator's member names (:func:`zeroskip.hw.accelerator.
accelerator_members`): ``start``, ``job``, ``busy``, ``done``, ``counters``, ``status``,
``act_write`` and ``<memory>_write`` for ``memory_names``, ``result_read`` and
``result_column``; the engine's are those of :class:`zeroskip.hw.engine.linked.LinkedEngine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.lib import data

from zeroskip.config import DecodeStatus
from zeroskip.hw.decoders import decoder_class
from zeroskip.hw.layouts import counters_layout, job_layout, shape_width

__all__ = ["LinkDevice", "ENGINE_JOB_BITS", "accelerator_device", "engine_device",
           "engine_targets", "memory_targets"]


@dataclass(frozen=True)
class LinkDevice:
    """One kind of device behind the link.

    Attributes
    ----------
    make : callable
        Builds the device component.
    digest : str
        Hex; INFO reports its first 6 bytes.
    targets : list of (name, data_bits, mask_bits, depth)
        What WRITE fills, in target order: a word is ``data | mask << data_bits``,
        little-endian in whole bytes.
    job_bits : int
        RUN's payload (the device's ``job``).
    report_layout : StructLayout
        RUN's reply: the device's ``counters`` and ``status``, and with ``link_counts`` the
        link's byte counts (``link_rx``, ``link_tx``) taken when the RUN started.
    read_columns, read_depth, read_bits, read_latency : int
        READ's port: ``read_columns`` columns of ``read_depth`` words of ``read_bits``, each
        ``read_latency`` cycles after its address.
    registered_read : bool
        The link registers the read word before it picks its bytes (pipelined arrays).
    link_counts : bool
    """
    make: Callable
    digest: str
    targets: list
    job_bits: int
    report_layout: data.StructLayout
    read_columns: int
    read_depth: int
    read_bits: int
    read_latency: int
    registered_read: bool
    link_counts: bool = False


def memory_targets(config):
    """The decoder lanes' memories as WRITE targets: one slot of data and one mask bit per
    lane, exactly the accelerator's write ports."""
    return [(name, config.cols * shape_width(shape), config.cols, depth)
            for name, (shape, depth) in decoder_class(config).memories(config).items()]


def accelerator_device(config) -> LinkDevice:
    """The accelerator: WRITE's target 0 is the activations (one int8 per PE row), then each
    decoder memory; RUN takes a job and replies with its counters and lane status; READ reads
    the result port (``result_rows`` int32 per word)."""
    from zeroskip.hw.accelerator import accelerator_for
    return LinkDevice(
        make=lambda: accelerator_for(config), digest=config.digest(),
        targets=[("act", config.rows * config.act_width, 0, config.act_depth)] +
        memory_targets(config),
        job_bits=job_layout(config).size,
        report_layout=data.StructLayout({
            "counters": counters_layout(config),
            "status": data.ArrayLayout(DecodeStatus, config.cols)}),
        read_columns=config.cols, read_depth=config.result_depth,
        read_bits=config.result_rows * config.acc_width,
        read_latency=config.result_read_latency, registered_read=config.pipelined)


#: RUN's payload for the engine: a byte, reserved (an inference needs no job: the program
#: is on chip)
ENGINE_JOB_BITS = 8


def engine_targets(params):
    """The engine's WRITE targets: the input feature map (an int8 per address), each decoder
    memory (the resident weights), the program, the parameter memory, the column map and the
    lookup table (if it has one)."""
    from zeroskip.hw.engine.drain import channel_bits
    from zeroskip.hw.engine.output_stage import params_layout
    targets = [("fm", 8, 0, params.fm_depth)] + memory_targets(params.config) + [
        ("program", params.step_layout.size, 0, params.program_depth),
        ("params", params_layout().size, 0, params.param_depth),
        ("colmap", channel_bits(params), 0, params.colmap_depth)]
    if params.lut_depth:
        targets.append(("lut", 8, 0, params.lut_depth))
    return targets


def engine_device(params) -> LinkDevice:
    """The network engine (:class:`zeroskip.hw.engine.linked.LinkedEngine`): WRITE fills
    :func:`engine_targets`; RUN starts an inference and replies with the engine's counters, its fault flag and the link's
    byte counts; READ reads the output map (column 0, an int8 per word)."""
    from zeroskip.hw.engine.linked import LinkedEngine
    return LinkDevice(
        make=lambda: LinkedEngine(params), digest=params.digest(),
        targets=engine_targets(params),
        job_bits=ENGINE_JOB_BITS,
        report_layout=data.StructLayout({"counters": params.counters_layout, "status": 1,
                                         "link_rx": 32, "link_tx": 32}),
        read_columns=1, read_depth=params.aux_depth, read_bits=8, read_latency=1,
        registered_read=False, link_counts=True)
