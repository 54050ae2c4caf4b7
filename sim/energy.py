"""Energy and energy-delay product of a GEMM: event counts priced by a table.

An **estimate**: energy = Σ events × picojoules per event + static picojoules per cycle. Six
events are hardware counters of their activity (:data:`zeroskip.hw.layouts.COUNTERS` and, with
``energy_counters``, :data:`~zeroskip.hw.layouts.ENERGY_COUNTERS`), three are computed from
such counters and three are the host's figures (the table below); the per-event energies from
a table whose every entry cites its source (default: ``energy_table.json``, Horowitz, ISSCC 2014,
45 nm). Off-chip operand movement is a line of its own (``offchip``), so that neither the
on-chip gains nor the DRAM costs hide behind the other.

Events (:func:`events`), where each count comes from (a report's ``provenance["events"]``, from
:data:`EVENT_SOURCES`: ``rtl``, a hardware counter of that very activity; ``derived``, computed
from hardware counters; ``host``, computed by the host from the operands or counted by it), and
what is counted:

=====================  =======  ==============================================================
``mac_executed``       rtl      counter ``macs_executed``: multiplier fires
``mac_gated``          rtl      counter ``macs_gated``: valid MACs held because an operand was
                                zero
``tokens``             rtl      counter ``lane_busy``: tokens the decoder lanes emitted
``lane_reads``         rtl      counter ``lane_reads``: words the decoder lanes read (weights
                                and metadata)
``act_writes``         rtl      counter ``act_writes``: activation bytes written, each PE's
                                copy (the write port's beats × rows × cols: a beat writes
                                every PE's buffer); equals what the host loaded
``lane_writes``        rtl      counter ``lane_writes``: lane-memory words written (the write
                                masks' bits); equals what the host loaded
``acc_updates``        derived  ``macs_executed``: the accumulator adds a product only when the
                                multiplier fired (otherwise it adds 0: no carry chain toggles);
                                no counter of its own
``act_operand_reads``  derived  ``macs_executed + macs_gated``: the activations that valid MACs
                                took from their PEs' buffers. A lower bound of the buffers'
                                reads: a buffer's read port has no enable, so it also reads in
                                cycles without a valid MAC, which nothing counts
``result_writes``      derived  ``outputs × rows``: a closed output writes a word for every PE
                                of its column (the idle rows of a last M-tile too)
``result_reads``       host     result words the runtime reads back (the program's outputs ×
                                rows)
``host_words_in``      host     32-bit words of operands the host sends (activations and the
                                lanes' memory images, from the program)
``host_words_out``     host     32-bit result words sent back
``stage_elements``     rtl      resident runs only (:func:`resident_events`): results the
                                output stage requantized (engine counter ``stage_elements``)
``fm_reads``           derived  resident runs only: activations the gather unit read from the
                                feature map, ``act_writes / cols`` (a beat's rows; padding's
                                zeros included: an upper bound), plus the pooling unit's
                                busy cycles (engine counter ``pool_cycles``: a read each)
``fm_writes``          rtl      resident runs only: activations written into either feature
                                map (engine counter ``map_writes``)
=====================  =======  ==============================================================

A resident run (:func:`resident_events`) prices the network engine's counters per inference
(:data:`zeroskip.hw.engine.descriptor.ENGINE_ENERGY_COUNTERS`) with the same table; its
``lane_writes`` are 0 (the weights are loaded once, not per inference) and its off-chip words
are the input and output tensors only.

The board builds have no energy counters (:attr:`~zeroskip.config.ArrayConfig.energy_counters`):
their reports have no events.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zeroskip.sim.loaders import BadInput

__all__ = ["EVENTS", "CATEGORIES", "EVENT_SOURCES", "RESIDENT_EVENTS",
           "RESIDENT_CATEGORIES", "RESIDENT_SOURCES", "RTL", "DERIVED",
           "HOST", "RENAMED", "EnergyTable", "events", "resident_events", "dense_events",
           "estimate", "combine", "DEFAULT_TABLE", "FIGURES"]

#: The energy figures of a report that :func:`combine` sums over GEMMs or layers.
FIGURES = ("energy_pj", "energy_breakdown_pj", "edp_pj_cycles", "dense_energy_pj",
           "dense_edp_pj_cycles", "onchip_edp_ratio_vs_dense", "energy_table")

DEFAULT_TABLE = Path(__file__).with_name("energy_table.json")

#: The energy categories of ``energy_breakdown_pj`` (besides ``static``) and their events.
CATEGORIES = {
    "compute": ("mac_executed", "mac_gated", "acc_updates", "tokens"),
    "onchip_memory": ("act_operand_reads", "act_writes", "lane_reads", "lane_writes",
                      "result_writes", "result_reads"),
    "offchip": ("host_words_in", "host_words_out"),
}
EVENTS = tuple(name for names in CATEGORIES.values() for name in names)

#: A resident run's categories (:func:`resident_events`): the network engine's own events too.
RESIDENT_CATEGORIES = {
    "compute": CATEGORIES["compute"] + ("stage_elements",),
    "onchip_memory": CATEGORIES["onchip_memory"] + ("fm_reads", "fm_writes"),
    "offchip": CATEGORIES["offchip"],
}
RESIDENT_EVENTS = tuple(name for names in RESIDENT_CATEGORIES.values() for name in names)

#: Where an event's count comes from (the module's table says why): a hardware counter of that
#: very activity, a computation on hardware counters, or the host's own figure.
RTL, DERIVED, HOST = "rtl", "derived", "host"
EVENT_SOURCES = {
    "mac_executed": RTL, "mac_gated": RTL, "tokens": RTL, "lane_reads": RTL,
    "act_writes": RTL, "lane_writes": RTL,
    "acc_updates": DERIVED, "act_operand_reads": DERIVED, "result_writes": DERIVED,
    "result_reads": HOST, "host_words_in": HOST, "host_words_out": HOST,
}

#: A resident run's sources where they differ from :data:`EVENT_SOURCES`: the drain reads
#: every closed output's word (``outputs × rows``, as they are written); no lane-memory word
#: is written during an inference (the host loads the weights once: its figure, 0); the
#: off-chip words are the host's figures (the input and output tensors' sizes).
RESIDENT_SOURCES = EVENT_SOURCES | {"result_reads": DERIVED, "lane_writes": HOST,
                                    "stage_elements": RTL, "fm_reads": DERIVED,
                                    "fm_writes": RTL}

#: Events renamed since tables were written for them: old name -> new name.
RENAMED = {"act_reads": "act_operand_reads"}
STATIC = "static_pj_per_cycle"


@dataclass(frozen=True)
class EnergyTable:
    """Picojoules per event and per cycle, with a source per entry."""
    name: str
    source: str
    pj: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls) -> "EnergyTable":
        data = json.loads(DEFAULT_TABLE.read_text())
        entries = data["entries"]
        return cls(data["name"], data["source"],
                   {name: float(entry["pj"]) for name, entry in entries.items()},
                   {name: entry["source"] for name, entry in entries.items()})

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EnergyTable":
        """The default table, or the default with the entries of the JSON object at ``path``
        (event names and ``static_pj_per_cycle`` mapped to picojoules; optional ``name`` and
        ``source`` strings). BadInput for anything else, naming it."""
        table = cls.default()
        if path is None:
            return table
        what = f"--energy-table {path}"
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise BadInput(f"{what}: no such file") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BadInput(f"{what}: not a JSON file ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise BadInput(f"{what}: expected a JSON object of event names to picojoules")
        pj, sources = dict(table.pj), dict(table.sources)
        name, source = Path(path).stem, f"{path} (the default for the entries it omits)"
        for key, value in data.items():
            if key in ("name", "source"):
                if not isinstance(value, str):
                    raise BadInput(f"{what}: {key!r} must be a string")
                name, source = (value, source) if key == "name" else (name, value)
                continue
            if key in RENAMED:
                raise BadInput(f"{what}: {key!r} is now {RENAMED[key]!r} (what it counts: "
                               f"the activations valid MACs read); rename the key")
            if key not in pj:
                raise BadInput(f"{what}: unknown key {key!r} (the events are "
                               f"{', '.join(RESIDENT_EVENTS)}, and {STATIC})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise BadInput(f"{what}: {key} must be a number of picojoules >= 0, not "
                               f"{value!r}")
            pj[key], sources[key] = float(value), str(path)
        return cls(name, source, pj, sources)


def events(program, rtl) -> dict[str, int] | None:
    """The events of a GEMM's runs (the module's table), or None for a configuration without
    energy counters."""
    config = program.config
    if not config.energy_counters:
        return None
    total = rtl.total
    executed, gated = total("macs_executed"), total("macs_gated")
    result_words = sum(run.m_tiles * len(columns) for run in program.runs
                       for columns in run.lane_columns) * config.rows
    return {
        "mac_executed": executed,
        "mac_gated": gated,
        "acc_updates": executed,
        "act_operand_reads": executed + gated,
        "act_writes": total("act_writes"),
        "lane_reads": total("lane_reads"),
        "lane_writes": total("lane_writes"),
        "tokens": total("lane_busy"),
        "result_writes": total("outputs") * config.rows,
        "result_reads": result_words,
        "host_words_in": _host_words_in(program),
        "host_words_out": result_words,
    }


def resident_events(counters: dict, config, words_in: int,
                    words_out: int) -> dict[str, int] | None:
    """The events of one inference on the network engine (the module's table) from its
    counters (:data:`zeroskip.hw.engine.descriptor.ENGINE_ENERGY_COUNTERS`), or None without
    them (a configuration without ``energy_counters``). ``words_in``/``words_out``: the 32-bit
    words of the input and output tensors (the only off-chip traffic of an inference)."""
    if not config.energy_counters or "macs_executed" not in counters:
        return None
    executed, gated = int(counters["macs_executed"]), int(counters["macs_gated"])
    act_writes = int(counters["act_writes"])
    result_words = int(counters["outputs"]) * config.rows
    return {
        "mac_executed": executed,
        "mac_gated": gated,
        "acc_updates": executed,
        "act_operand_reads": executed + gated,
        "act_writes": act_writes,
        "lane_reads": int(counters["lane_reads"]),
        "lane_writes": 0,
        "tokens": int(counters["lane_busy"]),
        "result_writes": result_words,
        "result_reads": result_words,
        "host_words_in": words_in,
        "host_words_out": words_out,
        "stage_elements": int(counters["stage_elements"]),
        "fm_reads": act_writes // config.cols + int(counters["pool_cycles"]),
        "fm_writes": int(counters["map_writes"]),
    }


def _host_words_in(program) -> int:
    """32-bit words of operands the host sends: the activations (a byte per PE row and
    address) and the decoder lanes' memory images, over every run."""
    bits = sum(run.acts.size * 8 for run in program.runs) + program.weight_bits_loaded
    return -(-bits // 32)


def dense_events(program, measured: dict[str, int]) -> dict[str, int]:
    """The events of the same GEMM in dense mode, from the dense program (``program``, compiled
    in dense mode, whose cycles the exact model gives) and the measured events of the same
    operands in another mode (``measured``): a **model**, for reports that run only one mode.

    Dense mode multiplies every active token (M × K × N products), emits every token of the
    program, loads and reads back the same words; its lane reads are taken as the measured
    mode's (the same compressed words are read; dense mode expands them)."""
    m, k, n = program.shape
    tokens = -(-m // program.config.rows) * k * n  # every weight of W, once per M-tile
    return dict(measured, mac_executed=m * k * n, mac_gated=0, acc_updates=m * k * n,
                act_operand_reads=m * k * n, tokens=tokens)


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The energy figures (:data:`FIGURES`) of several GEMMs or layers run one after another:
    energies and cycles add up, EDPs are of the sums. None-valued when one part has none."""
    if not parts or any(part.get("energy_pj") is None for part in parts):
        table = parts[0].get("energy_table") if parts else None
        return {name: None for name in FIGURES} | {"energy_table": table}
    cycles = sum(part["cycles"] for part in parts)
    dense_cycles = sum(part["dense_cycles"] for part in parts)
    breakdown = {category: round(sum(part["energy_breakdown_pj"][category] for part in parts), 3)
                 for category in parts[0]["energy_breakdown_pj"]}
    energy = round(sum(part["energy_pj"] for part in parts), 3)
    dense = round(sum(part["dense_energy_pj"] for part in parts), 3)
    # dense mode moves the same operands: the same off-chip energy
    onchip, dense_onchip = energy - breakdown["offchip"], dense - breakdown["offchip"]
    return {"energy_pj": energy, "energy_breakdown_pj": breakdown,
            "edp_pj_cycles": round(energy * cycles, 1), "dense_energy_pj": dense,
            "dense_edp_pj_cycles": round(dense * dense_cycles, 1),
            "onchip_edp_ratio_vs_dense": round(dense_onchip * dense_cycles / (onchip * cycles), 3)
            if onchip * cycles else None,
            "energy_table": parts[0]["energy_table"]}


def estimate(events_: dict[str, int] | None, cycles: int, table: EnergyTable,
             categories: dict[str, tuple[str, ...]] = CATEGORIES) -> dict[str, Any]:
    """``energy_pj``, ``energy_breakdown_pj`` (compute, onchip_memory, offchip, static: they sum
    to ``energy_pj``), ``edp_pj_cycles`` (energy × cycles), ``onchip_edp_pj_cycles`` (energy
    without ``offchip``, × cycles) and ``energy_table`` (its name and source); all None without
    events. ``categories``: :data:`RESIDENT_CATEGORIES` for :func:`resident_events`' events."""
    described = {"name": table.name, "source": table.source}
    if events_ is None:
        return {"energy_pj": None, "energy_breakdown_pj": None, "edp_pj_cycles": None,
                "onchip_edp_pj_cycles": None, "energy_table": described}
    breakdown = {category: sum(events_[name] * table.pj[name] for name in names)
                 for category, names in categories.items()}
    breakdown["static"] = cycles * table.pj[STATIC]
    breakdown = {category: round(value, 3) for category, value in breakdown.items()}
    energy = round(sum(breakdown.values()), 3)
    onchip = energy - breakdown["offchip"]
    return {"energy_pj": energy, "energy_breakdown_pj": breakdown,
            "edp_pj_cycles": round(energy * cycles, 1),
            "onchip_edp_pj_cycles": round(onchip * cycles, 1),
            "energy_table": described}
