"""``zeroskip verilog``: the accelerator's Verilog (native ports or a bus top), and the
register map of a bus top."""

import dataclasses
import re
import shlex
import textwrap

from zeroskip import __version__
from zeroskip.cli.parser import config_from

__all__ = ["verilog_command", "verilog_header", "top_ports"]


def top_ports(text: str, top: str) -> list[tuple[str, str, int]]:
    """``(name, direction, width)`` of each port of module ``top`` in the Verilog ``text``, in
    the order of its port list."""
    start = re.search(rf"^module {re.escape(top)}\((.*?)\);", text, re.MULTILINE | re.DOTALL)
    if start is None:
        raise ValueError(f"no module {top} in the Verilog")
    body = text[start.end():text.index("\nendmodule", start.end())]
    declared = {name: (direction, int(msb) - int(lsb) + 1 if msb else 1)
                for direction, msb, lsb, name in re.findall(
                    r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+?)\s*;", body,
                    re.MULTILINE)}
    names = [name.strip() for name in start.group(1).split(",")]
    return [(name, *declared[name]) for name in names]


def verilog_header(text: str, config, top: str, command: str) -> str:
    """The ``//`` comment lines written before the generated Verilog: zeroskip's version, the
    configuration (:class:`ArrayConfig`'s name and every field), the command that made the
    file and the top module's ports. The Verilog after it is exactly :func:`generate`'s."""
    fields = ", ".join(f"{name}={value!r}" for name, value in
                       dataclasses.asdict(config).items())
    lines = [f"zeroskip {__version__}: module {top}, configuration {config.name()}",
             *textwrap.wrap(f"ArrayConfig({fields})", 96, subsequent_indent="  ",
                            break_on_hyphens=False),
             "made by:",
             *textwrap.wrap(command, 96, initial_indent="  ", subsequent_indent="    ",
                            break_on_hyphens=False),
             "ports (name, direction, width in bits):"]
    ports = top_ports(text, top)
    column = max(len(name) for name, _, _ in ports)
    lines += [f"  {name:<{column}}  {direction:<6}  {width}" for name, direction, width in ports]
    return "".join(f"// {line}".rstrip() + "\n" for line in lines)


def verilog_command(args):
    from zeroskip.apps.outputs import Outputs, check_file
    from zeroskip.hw.verilog import TOP_NAME, generate
    from zeroskip.sim.loaders import BadInput
    check_file(args.output, "-o")
    for option, path in (("--header", args.header), ("--regmap", args.regmap)):
        if path and args.bus == "native":
            raise BadInput(f"{option} needs --bus axi or --bus wishbone (the native ports "
                           "have no register map)")
        if path:
            check_file(path, option)
    if not 1 <= args.clock_mhz <= 1000:
        raise BadInput(f"--clock-mhz must be between 1 and 1000, got {args.clock_mhz:g}")
    config = config_from(args)
    if config.double_buffer and args.bus != "native":
        raise BadInput("--double-buffer is not supported behind --bus axi|wishbone yet")
    clock_hz = round(args.clock_mhz * 1e6)
    text = generate(config, args.bus, clock_hz=clock_hz)
    top = TOP_NAME if args.bus == "native" else f"zeroskip_{args.bus}"
    text = verilog_header(text, config, top, shlex.join(["zeroskip", *args.argv])) + text
    written = [args.output]
    with Outputs() as outputs:
        outputs.write_text(args.output, text)
        if args.bus != "native":
            from zeroskip.hw.bus.regmap import RegisterMap
            regmap = RegisterMap(config, args.bus, clock_hz=clock_hz)
            for path, document in ((args.header, regmap.header), (args.regmap, regmap.markdown)):
                if path:
                    outputs.write_text(path, document())
                    written.append(path)
        outputs.commit()
    fmt = f"{config.nm_n}:{config.nm_m} nm" if config.fmt == "nm" else config.fmt
    kind = "dense systolic array" if config.arch == "dense" else f"{fmt} decoders"
    bus = "" if args.bus == "native" else f", {args.bus} bus"
    print(f"wrote {', '.join(written)}: {config.rows}x{config.cols} PEs, {kind}{bus}")
