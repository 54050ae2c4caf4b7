"""The ``zeroskip`` command: :func:`main` parses the command line (:mod:`zeroskip.cli.parser`)
and calls the command's module (``zeroskip.cli.gemm``, ``.run``, ``.verilog``, ``.build``,
``.bench``, ``.sweep``, ``.demo``, ``.formats``, ``.cache``).

Exit status: 0 done; 2 bad input (one line on stderr naming the problem, nothing written); 3 a
device or link failure (a serial port that cannot be opened, a link that gives up, a programmer
that fails or finds no board, a Dask scheduler that cannot be reached); 1 internal failure
(including RTL results or cycles disagreeing with the golden and cycle models, and sweep points
that failed).

Every error is one line on stderr in one voice, ``zeroskip: error: <what was found, what was
expected>``, whatever its exit status; a misspelt option, command or choice gets "did you mean".

Every output path is checked before any work (bad input), and a command's output files are
written together or not at all (``zeroskip.apps.outputs``); the one exception is ``gemm
--waves``, whose trace is kept when the run fails internally (exit 1), for debugging it.
Output folders follow one rule for every command: missing folders on an output's path (the
folder of ``gemm --out C.npy``, ``verilog -o``, ``--report``, ``--waves``; ``run``/``demo``/
``bench``/``sweep``/``build --out DIR`` and its parents) are created; a path whose existing part
is a file, or a folder that cannot be written, is bad input.
On a terminal, slow steps (a simulator build, a long simulation) are shown on stderr as they
happen; through a pipe stderr carries only the error line, and for large work (``gemm``) one
line up front with its size and rough simulation time.
"""

import os
import sys

from zeroskip.api import DeviceFailure, OutputsDiffer
from zeroskip.cli.parser import BadUsage, build_parser, subcommands

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "EXIT_DEVICE"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_DEVICE = 0, 1, 2, 3


def _commands():
    """Each command's body, by name (imported here: a command's module is loaded only when
    that command runs)."""
    from zeroskip.cli.bench import bench_command
    from zeroskip.cli.build import build_command
    from zeroskip.cli.cache import cache_command
    from zeroskip.cli.demo import demo_command
    from zeroskip.cli.formats import formats_command
    from zeroskip.cli.gemm import gemm_command
    from zeroskip.cli.run import run_command
    from zeroskip.cli.sweep import sweep_command
    from zeroskip.cli.verilog import verilog_command
    return {"gemm": gemm_command, "run": run_command, "build": build_command,
            "verilog": verilog_command, "bench": bench_command, "demo": demo_command,
            "formats": formats_command, "cache": cache_command, "sweep": sweep_command}


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _error(message: str) -> None:
    print(f"zeroskip: error: {message}", file=sys.stderr)


def main(argv=None) -> int:
    """Run the ``zeroskip`` command on ``argv`` (default ``sys.argv[1:]``); returns the exit
    status."""
    from zeroskip.cli.cache import limit_cache
    from zeroskip.cli.progress import attach, detach
    from zeroskip.sim.loaders import BadInput
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    handlers: list = []
    try:
        parser = build_parser()
        if not argv:
            raise BadUsage(f"no command given; one of {', '.join(subcommands(parser))} "
                           f"(zeroskip --help says what each does, zeroskip COMMAND --help its "
                           f"options)")
        args = parser.parse_args(argv)
        args.argv = argv  # bench names the command that made its figures
        handlers = attach(args.command)
        _commands()[args.command](args)
        built = handlers[0].folders
        detach(handlers)
        handlers = []
        if built:
            limit_cache(built)
    except (BadUsage, BadInput) as exc:
        _error(_first_line(exc))
        return EXIT_BAD_INPUT
    except DeviceFailure as exc:
        _error(_first_line(exc))
        return EXIT_DEVICE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_FAILURE
    except BrokenPipeError:  # stdout closed early (`zeroskip formats | head`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OutputsDiffer as exc:  # a wrong answer: exit 1, the files written for diagnosis
        _error(_first_line(exc))
        return EXIT_FAILURE
    except Exception as exc:  # an internal failure still gets one line, not a traceback
        if os.environ.get("ZEROSKIP_DEBUG"):
            raise
        from zeroskip.sim.rtl.build import SimulatorMissing
        if isinstance(exc, SimulatorMissing):  # not a bug: a tool to install, and how
            _error(_first_line(exc))
            return EXIT_FAILURE
        _error(f"internal error ({type(exc).__name__}): {_first_line(exc)} (ZEROSKIP_DEBUG=1 "
               f"shows the traceback)")
        return EXIT_FAILURE
    finally:
        detach(handlers)
    return EXIT_OK
