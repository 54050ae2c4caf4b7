"""Randomized differential regression: random GEMMs over random configurations, formats and
modes on the RTL, each checked bit for bit against NumPy and its cycle counter against the model.

    python -m zeroskip.sim.regress N [--seed S] [--sim verilator|icarus]
"""

import argparse
import sys
from collections import defaultdict

import numpy as np

from ..config import FORMATS, LANE_KINDS, ArrayConfig, Mode
from . import golden
from .compiler import assemble, compile_gemm
from .patterns import sparse_weights
from .runner import run_programs

#: (array side, lane kind): every format, and the pipelined csc lanes of 100 MHz-class boards
CONFIGS = [(side, fmt) for side in (2, 4, 8) for fmt in FORMATS] + \
    [(side, "csc-pipelined") for side in (4, 8)]


def random_case(rng, config):
    m, k, n = (int(rng.integers(1, high)) for high in (40, 80, 40))
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[rng.random((m, k)) < rng.choice([0.0, 0.3, 0.9])] = 0
    if rng.random() < 0.1:
        acts[:] = -128
    if config.fmt == "nm":
        weights = sparse_weights(rng, k, n, "2:4")
    else:
        density = float(rng.choice([1.0, 0.5, 0.25, 0.1, 0.02, 0.0]))
        pattern = str(rng.choice(["uniform", "block4x4", "heavy_tailed"]))
        weights = sparse_weights(rng, k, n, pattern, density)
    if rng.random() < 0.1:
        weights[weights != 0] = -128
    return acts, weights, Mode(int(rng.integers(3)))


def regress(count, seed=0, sim="verilator", progress=True):
    """Run ``count`` cases; returns (passed, failures)."""
    rng = np.random.default_rng(seed)
    by_config = defaultdict(list)
    for _ in range(count):
        side, fmt = CONFIGS[int(rng.integers(len(CONFIGS)))]
        by_config[(side, fmt)].append(rng.integers(2**32))
    passed, failures = 0, []
    items = sorted(by_config.items())
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="regress", unit="config")
    for (side, fmt), seeds in items:
        config = ArrayConfig.for_capacity(side, side, **LANE_KINDS[fmt])
        cases = [random_case(np.random.default_rng(s), config) for s in seeds]
        programs = [compile_gemm(a, w, config, mode) for a, w, mode in cases]
        for program, (acts, weights, mode), rtl, case_seed in zip(
                programs, cases, run_programs(programs, sim), seeds):
            result = assemble(program, rtl.results)
            cycles = sum(c["cycles"] for c in rtl.counters)
            if np.array_equal(result, golden.gemm(acts, weights)) and not rtl.faults and \
                    cycles == program.predicted_cycles:
                passed += 1
            else:
                failures.append(f"{side}x{side} {fmt} {mode.name.lower()} "
                                f"{program.shape} case seed {case_seed}")
    return passed, failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zeroskip.sim.regress")
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    args = parser.parse_args(argv)
    passed, failures = regress(args.count, args.seed, args.sim)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"regress: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
