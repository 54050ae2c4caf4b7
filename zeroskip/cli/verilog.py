"""``zeroskip verilog``: the accelerator's Verilog (native ports or a bus top), and the
register map of a bus top."""

from zeroskip.cli.parser import config_from

__all__ = ["verilog_command"]


def verilog_command(args):
    from zeroskip.apps.outputs import Outputs, check_file
    from zeroskip.hw.verilog import generate
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
