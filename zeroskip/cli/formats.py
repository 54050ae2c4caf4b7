"""``zeroskip formats``: bits per weight of every format against weight sparsity."""


__all__ = ["formats_command"]


def formats_command(args):
    from zeroskip.apps.formats_table import formats_table
    from zeroskip.sim.loaders import BadInput
    if not 1 <= args.size <= 4096:
        raise BadInput(f"--size must be between 1 and 4096, got {args.size}")
    print(formats_table(args.size))
