"""Randomized differential regression: random GEMMs on random configurations, formats and modes,
on the RTL (Verilator and Icarus), each checked bit for bit against NumPy, its cycle counter
against the model and its MAC counters against their definitions; a decoder fault, a compile
error (e.g. ``GemmTooLarge`` for a K the configuration accepts) or a simulation failure is a
failure too.

    python -m zeroskip.apps.regress N [--seed S] [--sim verilator|icarus]   (make regress N= SEED=)
    python -m zeroskip.apps.regress --seed S --case I[,J...]   (make regress SEED=S CASE=I)

Every run draws a fresh seed unless one is given and prints it first. The seed fixes a pool of
configurations (:data:`POOL_SIZE` entries, each one simulator build, drawn from the whole
space :class:`~zeroskip.config.ArrayConfig` accepts: non-square arrays, every format with its
parameters, every multiplier variant, tight memories and small ``max_k``, narrow
accumulators, the boards' own configurations, a share on Icarus); case ``I`` of seed ``S``
depends on ``S`` and ``I`` only (not on N), so ``--seed S --case I`` reruns it alone. Cases of
one configuration run in one simulation.
"""

import argparse
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from zeroskip.config import FORMATS, LANE_KINDS, ArrayConfig, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.patterns import n_of_m_mask, sparse_weights

#: configuration entries per run (each one a simulator build: a run's time is mostly these
#: builds, 15-90 s each for Verilator; the 300 cases of CI simulate in well under a minute)
POOL_SIZE = 14
#: of which drawn from the configurations ``make test`` also builds (their builds are shared)
ANCHORS = 3
#: of which simulated on Icarus (its builds are quicker, its simulations ~5x slower than
#: Verilator's: arrays of at most 16 PEs, small GEMMs)
ICARUS_ENTRIES = 4
#: relative share of the cases an entry gets
WEIGHT = {"verilator": 1.0, "icarus": 1.0}

#: the configurations of the fixed regression before the seeded one: (array side, lane kind)
ANCHOR_CONFIGS = [(side, fmt) for side in (2, 4, 8) for fmt in FORMATS] + \
    [(side, "csc-pipelined") for side in (4, 8)]

#: array shapes of the random configurations (at most 32 PEs: a Verilator build of 64 PEs
#: takes a minute or more; the 8×8 comes in through the anchors and the ULX3S)
SHAPES = [(r, c) for r in (1, 2, 3, 4, 8) for c in (1, 2, 3, 4, 8) if r * c <= 32]


@dataclass(frozen=True)
class Entry:
    """One configuration of the pool and the simulator it runs on."""
    label: str
    config: ArrayConfig
    sim: str
    small: bool = False  # small GEMMs only (boards' tiny memories, Icarus)


def min_acc_width(max_k):
    """The narrowest accumulator ArrayConfig accepts for ``max_k``."""
    return next(w for w in range(17, 33) if max_k * 2 ** 14 <= 2 ** (w - 1) - 1)


def format_params(rng, fmt):
    if fmt == "nm":
        m = int(rng.integers(2, 17))
        return {"nm_n": int(rng.integers(1, m)), "nm_m": m}
    if fmt == "bitmap":
        return {"bitmap_width": int(rng.choice([8, 16, 32, 64, 128, 256]))}
    if fmt == "rle":
        return {"rle_run_bits": int(rng.integers(2, 9))}
    return {}


def multiplier_params(rng, rows, cols):
    choices = ["infer", "ecp5_registered", "logic"] + (["ice40_pairs"] if rows % 2 == 0 else [])
    kind = str(rng.choice(choices))
    if kind == "logic":
        return {"logic_multipliers": int(rng.integers(1, rows * cols + 1))}
    return {} if kind == "infer" else {"multipliers": kind}


def random_config(rng):
    """A configuration from the space ArrayConfig accepts."""
    rows, cols = SHAPES[int(rng.integers(len(SHAPES)))]
    params = dict(LANE_KINDS[str(rng.choice(list(LANE_KINDS)))])
    params.update(format_params(rng, params["fmt"]))
    params.update(multiplier_params(rng, rows, cols))
    if rng.random() < 0.5:
        # tight memories: a small max_k (sometimes met exactly), few columns and M-tiles per
        # run, the narrowest accumulator that holds max_k products (or 32 bits)
        max_k = int(rng.integers(4, 161))
        config = ArrayConfig.for_capacity(
            rows, cols, m=rows * int(rng.integers(1, 4)), k=max_k,
            n=cols * int(rng.integers(1, 4)), max_k=max_k, **params)
        # output memories for every column a lane can hold (pointer_depth - 1), so that the
        # host compiler's column split always finds a schedule
        config = config.with_(
            out_depth=max(config.out_depth, config.pointer_depth - 1),
            acc_width=min_acc_width(max_k) if rng.random() < 0.5 else 32)
        label = f"small-{max_k}"
    else:
        config, label = ArrayConfig.for_capacity(rows, cols, **params), "roomy"
    if rng.random() < 0.25:
        # double-buffered: the runs of a GEMM overlap their loads and read-back, and the
        # end-to-end counter is checked against the schedule's model (RunResult.check)
        config = config.with_(double_buffer=True)
    if rng.random() < 0.15:
        # the dense baseline (a systolic array, no decoder lanes) on the same memories
        config, label = config.with_(arch="dense", fmt="csc", double_buffer=False), \
            f"{label}-dense"
    elif config.fmt == "csc" and not config.double_buffer and rng.random() < 0.25:
        # results in one memory per PE column, as on the iCEBreaker (short columns padded to
        # `rows` tokens); out_depth bounded, as the memory holds rows times as many words
        config = config.with_(column_results=True, out_depth=min(config.out_depth, 64))
        label = f"{label}-column-results"
    return config, label


def describe(config):
    """The configuration in one line: the array, the lane kind and what differs from the
    defaults."""
    defaults = ArrayConfig()
    skip = {"rows", "cols", "fmt", "pipelined"}
    changed = [f"{key}={value}" for key, value in config.to_dict().items()
               if key not in skip and value != getattr(defaults, key)
               and not (key in ("nm_n", "nm_m") and config.fmt != "nm")
               and not (key == "bitmap_width" and config.fmt != "bitmap")
               and not (key == "rle_run_bits" and config.fmt != "rle")
               and not (key == "mask_depth" and config.fmt != "bitmap")
               and key != "arch"]
    kind = ("dense" if config.arch == "dense" else config.fmt) + \
        ("-pipelined" if config.pipelined else "")
    return f"{config.rows}x{config.cols} {kind} " + " ".join(changed)


def make_pool(seed):
    """The configurations of a run: the two boards, a few anchors, the rest random; a share on
    Icarus. Depends on ``seed`` only."""
    from zeroskip.platforms.boards import BOARDS
    rng = np.random.default_rng([seed, 0x9001])
    pool = [Entry(f"board {name}", board.config, "verilator", small=True)
            for name, board in BOARDS.items()]
    for index in rng.choice(len(ANCHOR_CONFIGS), ANCHORS, replace=False):
        side, kind = ANCHOR_CONFIGS[int(index)]
        pool.append(Entry("anchor", ArrayConfig.for_capacity(side, side, **LANE_KINDS[kind]),
                          "verilator"))
    while len(pool) < POOL_SIZE:
        config, label = random_config(rng)
        icarus = len(pool) >= POOL_SIZE - ICARUS_ENTRIES
        if icarus and config.pe_count > 16:
            continue  # Icarus: small arrays only
        pool.append(Entry(label, config, "icarus" if icarus else "verilator", small=icarus))
    # one board on Icarus now and then (its own configuration, both simulators over many runs)
    if rng.random() < 0.3:
        board = int(rng.integers(2))
        pool[board] = Entry(pool[board].label, pool[board].config, "icarus", small=True)
    return pool


def nm_weights(rng, k, n, config):
    """Weights that fit ``config``'s N:M pattern: up to N nonzeros in every group of M."""
    keep = int(rng.integers(1, config.nm_n + 1)) if rng.random() < 0.3 else config.nm_n
    mask = n_of_m_mask(rng, k, n, keep, config.nm_m)
    mask &= rng.random((k, n)) < float(rng.choice([1.0, 1.0, 0.5, 0.1]))
    values = sparse_weights(rng, k, n, "uniform", 1.0)
    return (values * mask).astype(np.int8)


def random_case(rng, entry):
    config = entry.config
    if entry.small:
        high_m, high_k, high_n = 3 * config.rows + 1, 48, max(13, 3 * config.cols + 2)
    else:
        high_m, high_k, high_n = 40, 80, 40
    m, n = int(rng.integers(1, high_m)), int(rng.integers(1, high_n))
    k = int(rng.integers(1, min(high_k, config.max_k) + 1))
    if config.max_k <= 256 and rng.random() < 0.25:
        k = config.max_k  # K at the configuration's limit
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[rng.random((m, k)) < rng.choice([0.0, 0.3, 0.9])] = 0
    if rng.random() < 0.1:
        acts[:] = -128
    if config.fmt == "nm":
        weights = nm_weights(rng, k, n, config)
    else:
        density = float(rng.choice([1.0, 0.5, 0.25, 0.1, 0.02, 0.0]))
        pattern = str(rng.choice(["uniform", "block4x4", "heavy_tailed"]))
        weights = sparse_weights(rng, k, n, pattern, density)
    if rng.random() < 0.1:
        weights[weights != 0] = -128
    mode = Mode(int(rng.integers(3)))
    return acts, weights, Mode.DENSE if config.arch == "dense" else mode


def draw_case(seed, index, pool):
    """Case ``index`` of ``seed``: (pool index, acts, weights, mode)."""
    rng = np.random.default_rng([seed, index])
    weights = np.array([WEIGHT[entry.sim] for entry in pool])
    slot = int(rng.choice(len(pool), p=weights / weights.sum()))
    return (slot, *random_case(rng, pool[slot]))


def problems(program, acts, weights, rtl):
    """What is wrong with a run (empty if nothing)."""
    found = []
    if rtl.faults:
        run, lane, code = rtl.faults[0]
        found.append(f"decoder fault {code.name} (lane {lane}, run {run})")
    result = assemble(program, rtl.results)
    expected = golden.gemm(acts, weights)
    if not np.array_equal(result, expected):
        wrong = np.argwhere(result != expected)
        r, c = wrong[0]
        found.append(f"{len(wrong)} wrong results, e.g. C[{r},{c}] = {result[r, c]}, "
                     f"expected {expected[r, c]}")
    total = {name: sum(int(c[name]) for c in rtl.counters) for name in rtl.counters[0]}
    if total["cycles"] != program.predicted_cycles:
        found.append(f"cycles {total['cycles']}, model {program.predicted_cycles}")
    m, k, n = program.shape
    if program.config.arch == "dense":
        # every beat crosses all R x C PEs, padding rows and idle column slots included
        executed = program.config.pe_count * sum(
            run.m_tiles * max(len(cols) for cols in run.lane_columns) * run.k
            for run in program.runs)
    elif program.mode == Mode.DENSE:
        executed = m * k * n
    else:
        executed = golden.macs_both_nonzero(acts, weights)
    if total["macs_executed"] != executed:
        found.append(f"macs_executed {total['macs_executed']}, expected {executed}")
    return found


def short(exc):
    """An exception in one line: its first line and, for a simulator log, its last."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = type(exc).__name__ + ": " + " ... ".join(lines[:1] + lines[-1:] if len(lines) > 1
                                                     else lines)
    return text[:400]


def run_entry(entry, cases, sim):
    """Run ``cases`` [(index, acts, weights, mode)] of one entry; yields (index, problems)."""
    from zeroskip.sim.rtl.build import build_accelerator
    from zeroskip.sim.rtl.runner import run_programs
    programs = {}
    for index, acts, weights, mode in cases:
        try:
            programs[index] = compile_gemm(acts, weights, entry.config, mode)
        except Exception as exc:  # noqa: BLE001 - a compile error for an accepted K is a failure
            yield index, [f"compile: {short(exc)}"]
    runnable = [case for case in cases if case[0] in programs]
    if not runnable:
        return
    try:
        build_accelerator(entry.config, sim)
    except Exception as exc:  # noqa: BLE001 - every case of the configuration fails
        for case in runnable:
            yield case[0], [f"build: {short(exc)}"]
        return
    try:
        rtls = run_programs([programs[case[0]] for case in runnable], sim)
    except Exception as exc:  # noqa: BLE001 - find the case that broke the simulation, alone
        if len(runnable) == 1:
            yield runnable[0][0], [f"simulation: {short(exc)}"]
            return
        for case in runnable:
            yield from run_entry(entry, [case], sim)
        return
    for (index, acts, weights, _), rtl in zip(runnable, rtls):
        try:
            yield index, problems(programs[index], acts, weights, rtl)
        except Exception as exc:  # noqa: BLE001
            yield index, [f"check: {short(exc)}"]


def regress(count=None, seed=0, sim=None, *, cases=None, progress=True, out=print):
    """Run cases ``0 .. count - 1`` (or the indices ``cases``) of ``seed``; ``sim`` forces one
    simulator for every entry. Returns (passed, failures); failures are FAIL lines."""
    pool = make_pool(seed)
    indices = list(range(count)) if cases is None else list(cases)
    by_slot = defaultdict(list)
    for index in indices:
        slot, acts, weights, mode = draw_case(seed, index, pool)
        by_slot[slot].append((index, acts, weights, mode))
    passed, failures = 0, []
    items = sorted(by_slot.items())
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="regress", unit="config", file=sys.stderr)
    for slot, slot_cases in items:
        entry = pool[slot]
        entry_sim = sim or entry.sim
        shapes = {index: (acts.shape[0], acts.shape[1], weights.shape[1], mode)
                  for index, acts, weights, mode in slot_cases}
        for index, found in run_entry(entry, slot_cases, entry_sim):
            if not found:
                passed += 1
                continue
            m, k, n, mode = shapes[index]
            line = (f"FAIL seed {seed} case {index}: {entry_sim} {entry.label} "
                    f"{describe(entry.config)}; MxKxN {m}x{k}x{n} {mode.name.lower()}: "
                    f"{'; '.join(found)}  [rerun alone: make regress SEED={seed} CASE={index}"
                    f"{f' (with --sim {sim})' if sim else ''}]")
            failures.append((index, line))
            if progress:
                items.write(line, file=sys.stdout)
    return passed, [line for _, line in sorted(failures)]


def describe_pool(pool, seed, indices):
    counts = defaultdict(int)
    for index in indices:
        counts[draw_case(seed, index, pool)[0]] += 1
    return [f"  [{slot}] {entry.sim} {entry.label}: {describe(entry.config)} "
            f"({counts[slot]} cases)" for slot, entry in enumerate(pool)]


def case_list(text):
    """``"3"`` or ``"3,7"`` -> [3] or [3, 7]."""
    try:
        cases = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"case indices look like 3 or 3,7, not {text!r}")
    if not cases or min(cases) < 0:
        raise argparse.ArgumentTypeError(f"case indices look like 3 or 3,7, not {text!r}")
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zeroskip.apps.regress",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", help="cases 0 .. N-1 of the seed")
    parser.add_argument("--seed", type=int, default=None,
                        help="the run's seed (default: a fresh one, printed first)")
    parser.add_argument("--case", type=case_list, action="extend", default=None, metavar="I",
                        help="run only case I of the seed (I,J,... or repeated); needs --seed")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default=None,
                        help="every configuration on this simulator (default: a share on "
                             "Icarus)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not list the run's configurations")
    args = parser.parse_args(argv)
    if args.case is not None and args.seed is None:
        parser.error("--case needs the --seed of the run it comes from")
    if args.case is None and args.count is None:
        parser.error("give N (the number of cases) or --seed S --case I")
    seed = secrets.randbits(32) if args.seed is None else args.seed
    indices = args.case if args.case is not None else range(args.count)
    again = (f"make regress N={args.count} SEED={seed}" if args.case is None else
             f"make regress SEED={seed} CASE={','.join(map(str, args.case))}")
    print(f"regress: seed {seed} ({len(indices)} cases; the same again: {again})", flush=True)
    if not args.quiet:
        print("\n".join(describe_pool(make_pool(seed), seed, indices)), flush=True)
    start = time.monotonic()
    passed, failures = regress(args.count, seed, args.sim, cases=args.case)
    if failures:
        print("\n".join(failures))
    print(f"regress: {passed} passed, {len(failures)} failed (seed {seed}, "
          f"{time.monotonic() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
