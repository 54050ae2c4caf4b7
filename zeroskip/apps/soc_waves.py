"""The README's timing diagram of one job through the AXI top, from a simulation:
``make soc`` (``python -m zeroskip.apps.soc_waves``) writes docs/soc/axi_job.png.

A 16×24 by 24×8 GEMM at 70% sparsity on a 4×4 array, in one run: the host runtime sends the
activations and compressed weights as WRITE frames on s_axis, the RUN frame, and reads the
results back with a READ frame; each reply comes out on m_axis with TLAST on its last byte;
``irq`` is low while the array computes. The AXI4-Lite read at the end is of STATUS.
"""

import argparse
from pathlib import Path

import numpy as np

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.bus.tops import AxiTop
from zeroskip.hw.verilog import convert
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.build import build
from zeroskip.sim.rtl.cache import bus_digest
from zeroskip.sim.rtl.runner import run_cocotb

__all__ = ["main"]

CONFIG = ArrayConfig(rows=4, cols=4, max_k=64, act_depth=128, weight_depth=64, pointer_depth=9,
                     out_depth=16)
CLOCK_HZ = 100_000_000


def simulate(sim="verilator"):
    rng = np.random.default_rng(0)
    acts = rng.integers(-128, 128, (16, 24)).astype(np.int8)
    weights = rng.integers(-128, 128, (24, 8)).astype(np.int8)
    weights[rng.random(weights.shape) < 0.7] = 0
    program = compile_gemm(acts, weights, CONFIG, Mode.SKIP)
    assert len(program.runs) == 1
    build_dir = build(sim, f"bus-axi-{bus_digest()}-{CONFIG.name()}",
                      lambda: convert(AxiTop(CONFIG, clock_hz=CLOCK_HZ), "zeroskip_axi"),
                      "zeroskip_axi")
    out = run_cocotb(sim, build_dir, "zeroskip_axi", "zeroskip.tb.cocotb_bus",
                     {"config": CONFIG, "programs": [program], "seed": 0,
                      "clock_hz": CLOCK_HZ}, testcase="axi_job_trace")
    (result,) = out["results"]
    np.testing.assert_array_equal(assemble(program, result.results), golden.gemm(acts, weights))
    return out, result


def plot(out, result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names, samples = out["signals"], np.array(out["samples"])
    shown = [n for n in names if not n.endswith("tdata")]
    fig, ax = plt.subplots(figsize=(13, 0.42 * len(shown) + 1.3))
    cycles = np.arange(len(samples))
    for row, name in enumerate(shown):
        y = len(shown) - 1 - row
        values = samples[:, names.index(name)]
        ax.step(cycles, y + 0.7 * values, where="post", lw=0.8, color="tab:blue")
        ax.fill_between(cycles, y, y + 0.7 * values, step="post", alpha=0.25, color="tab:blue")
    ax.set_yticks([len(shown) - 1 - i + 0.35 for i in range(len(shown))])
    ax.set_yticklabels(shown, fontsize=8)
    ax.set_xlim(0, len(samples))
    ax.set_xlabel("clock cycle")
    counters = result.counters[0]
    ax.set_title(f"One GEMM run through the AXI top (4×4 array, 16×24×8 at 70% sparsity): "
                 f"WRITE frames, RUN ({counters['cycles']} compute cycles; irq rises when done), "
                 f"READ frames; "
                 f"{len(samples)} cycles in all", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/soc", help="folder for axi_job.png")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    out, result = simulate()
    plot(out, result, Path(args.out) / "axi_job.png")
    print(f"wrote {args.out}/axi_job.png: {len(out['samples'])} cycles, "
          f"{result.counters[0]['cycles']} of them compute")


if __name__ == "__main__":
    main()
