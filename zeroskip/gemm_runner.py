"""The array the options describe, in a simulator or on a board: :class:`GemmRunner` runs
batches of GEMMs on the generated RTL and checks every result; :class:`DeviceFailure` is a board
or link that failed."""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroskip.array_options import array_config
from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim.loaders import BadInput

__all__ = ["GemmRunner", "DeviceFailure"]


class DeviceFailure(Exception):
    """A board, its serial link or its programmer failed (the command's exit status 3)."""

    @classmethod
    def of_link(cls, error, port):
        """The failure of the link at ``port`` (a LinkError), its message naming the port."""
        message = str(error)
        return cls(message if port in message else f"{port}: {message}")


class GemmRunner:
    """The array the options describe, in a simulator or on a board: runs batches of GEMMs,
    each batch in one simulation (a simulator start costs more than a small GEMM).

    The options are those of :func:`zeroskip.gemm`, validated the same way.
    """

    def __init__(self, *, rows: int | None = None, cols: int | None = None,
                 format: str | None = None, nm: str | tuple[int, int] | None = None,
                 mode: str | Mode | None = None, sim: str = "verilator",
                 board: str | None = None, port: str | None = None, waves: str | None = None,
                 config: ArrayConfig | None = None, energy_table: Any = None,
                 double_buffer: bool = False, arch: str = "zeroskip",
                 depths: dict[str, int] | None = None):
        from zeroskip.sim.energy import EnergyTable
        from zeroskip.sim.rtl.build import SIMULATORS, SimulatorMissing, check_wave_support
        if port is not None and board is None:
            raise BadInput("port needs board (the board programmed at that port)")
        if port is not None and waves is not None:
            raise BadInput("waves need a simulation, not a board at a port")
        if sim not in SIMULATORS:
            raise BadInput(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
        if config is None:
            config = array_config(rows, cols, format, nm, board, double_buffer=double_buffer,
                                  arch=arch, depths=depths)
        elif any(value is not None for value in (rows, cols, format, nm, board)) or \
                double_buffer or arch != "zeroskip" or depths:
            raise BadInput("config fixes the array; drop rows, cols, format, nm, board, "
                             "double_buffer, arch and depths")
        if mode is None:
            mode = "dense" if config.arch == "dense" else "skip"
        try:
            self.mode = Mode[mode.upper()] if isinstance(mode, str) else Mode(mode)
        except (KeyError, ValueError):
            raise BadInput(f"mode must be one of {', '.join(m.name.lower() for m in Mode)}, "
                             f"not {mode!r}") from None
        if config.arch == "dense" and self.mode != Mode.DENSE:
            raise BadInput(f"mode {self.mode.name.lower()}: the dense architecture executes "
                             f"every MAC (mode dense only)")
        if waves is not None:
            try:
                check_wave_support(sim, waves)
            except SimulatorMissing as exc:
                raise BadInput(f"waves: {exc}") from None
        self.config, self.sim, self.board, self.port, self.waves = config, sim, board, port, waves
        self.energy_table = energy_table if isinstance(energy_table, EnergyTable) else \
            EnergyTable.load(energy_table)

    def compile(self, acts: Any, weights: Any):
        """The checked operands and program of one GEMM; BadInput names what is wrong."""
        from zeroskip.sim import formats
        from zeroskip.sim.compiler import GemmTooLarge, compile_gemm
        from zeroskip.sim.loaders import as_int8_matrix, check_gemm_operands
        acts = as_int8_matrix(acts, "acts")
        weights = as_int8_matrix(weights, "weights")
        check_gemm_operands(acts, weights)
        try:
            formats.module(self.config.fmt).check(weights, self.config)
        except ValueError as exc:
            raise BadInput(f"weights: {exc}") from None
        try:
            return acts, weights, compile_gemm(acts, weights, self.config, self.mode)
        except GemmTooLarge as exc:
            raise BadInput(str(exc)) from None

    def run(self, pairs: list[tuple[Any, Any]]) -> list[tuple[np.ndarray, dict]]:
        """``[(C, report), ...]`` for ``[(A, W), ...]``, every C checked against NumPy."""
        from zeroskip.sim import golden
        from zeroskip.sim.compiler import assemble
        from zeroskip.sim.report import gemm_report
        from zeroskip.sim.rtl.runner import run_programs

        compiled = [self.compile(acts, weights) for acts, weights in pairs]
        programs = [program for _, _, program in compiled]
        if self.port is not None:
            from zeroskip.platforms.runtime import LinkError, run_on_board
            from zeroskip.platforms.top import DEFAULT_BAUD
            try:
                rtls, _ = run_on_board(programs, self.port, self.config, baud=DEFAULT_BAUD)
            except LinkError as exc:
                raise DeviceFailure.of_link(exc, self.port) from None
            source = f"board {self.board} at {self.port}"
        else:
            rtls = run_programs(programs, self.sim, waves=self.waves)
            source = self.sim
        out = []
        for (acts, weights, program), rtl in zip(compiled, rtls):
            rtl.check(program)  # a lane fault or a cycle count the model does not predict
            result = assemble(program, rtl.results)
            golden.check_result(result, acts, weights)
            report = gemm_report(program, acts, weights, rtl, source, self.energy_table)
            report["matches_golden"] = True
            report["provenance"]["matches_golden"] = "host"
            out.append((result, report))
        return out
