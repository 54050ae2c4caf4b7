"""``zeroskip build``: a board's bitstream and its resource/timing report; programming it."""

from pathlib import Path

from zeroskip.api import DeviceFailure

__all__ = ["build_command"]


def build_command(args):
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.platforms.flow import build_board
    from zeroskip.platforms.program import ProgrammingFailed, TimingNotMet, program
    from zeroskip.sim.loaders import BadInput
    from zeroskip.apps.outputs import check_folder
    try:
        board = BOARDS[args.board].for_arch(args.arch)
    except ValueError as exc:
        raise BadInput(f"--board {args.board}: {exc}") from None
    suffix = "" if args.arch == "zeroskip" else f"-{args.arch}"
    out = Path(args.out or Path("build") / f"{board.name}{suffix}")
    check_folder(out, "--out")
    report = build_board(board, out)
    print(f"{board.name}: {report['pe_count']} PEs at {report['clock_mhz']} MHz "
          f"(nextpnr Fmax {report['fmax_mhz']} MHz, timing "
          f"{'met' if report['timing_met'] else 'NOT met'}); "
          f"{report['luts_used']}/{report['luts_total']} LUTs, {report['ffs_used']} FFs, "
          f"{report['dsps_used']}/{report['dsps_total']} DSPs, "
          f"{report['brams_used']}/{report['brams_total']} BRAMs -> {report['bitstream']}")
    if args.program:
        try:
            program(board, report)
        except TimingNotMet as exc:
            raise BadInput(str(exc)) from None
        except ProgrammingFailed as exc:
            raise DeviceFailure(str(exc)) from None
        print(f"programmed {board.name}")
