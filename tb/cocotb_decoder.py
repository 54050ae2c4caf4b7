"""cocotb testbench of one decoder lane: memories loaded, random backpressure on the token
stream, every token checked against the NumPy specification, throughput counted."""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from zeroskip.sim.rtl.harness import write_beats


class DecoderTB:
    def __init__(self, dut, job):
        self.dut = dut
        self.job = job
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        dut = self.dut
        for name in ["start", "tokens__ready"] + [f"{m}_write__en" for m in self.job["memory_beats"]]:
            getattr(dut, name).value = 0
        dut.rst.value = 1
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        await FallingEdge(dut.clk)

    async def run(self, settings, ready_probability, seed):
        """Start the lane and collect its tokens; returns (tokens, cycles)."""
        dut = self.dut
        rand = random.Random(seed)
        for name, value in settings.items():
            getattr(dut, name).value = value
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        tokens, cycles = [], 0
        while dut.busy.value:
            # Inputs change and outputs are sampled on the falling edge: a transfer happens on
            # the next rising edge when valid and ready are both up now.
            ready = int(rand.random() < ready_probability)
            dut.tokens__ready.value = ready
            if ready and dut.tokens__valid.value:
                tokens.append(dut.tokens__payload.value.to_unsigned())
            await FallingEdge(dut.clk)
            cycles += 1
            assert cycles < self.job["timeout_cycles"], "decoder hung"
        return tokens, cycles


@cocotb.test()
async def decoder_stream(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    tb = DecoderTB(dut, job)
    await tb.reset()
    for name, beats in job["memory_beats"].items():
        await write_beats(dut, f"{name}_write", beats)
    outcomes = []
    for index, (settings, expected) in enumerate(job["runs"]):
        for probability in job["ready_probabilities"]:
            tokens, cycles = await tb.run(settings, probability, seed=index)
            assert len(tokens) == len(expected), \
                f"{len(tokens)} tokens, expected {len(expected)} (ready p={probability})"
            for i, (got, want) in enumerate(zip(tokens, expected)):
                assert got == want, f"token {i}: {got:#x} != {want:#x} (ready p={probability})"
            outcomes.append({"ready_probability": probability, "tokens": len(tokens),
                             "cycles": cycles})
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(outcomes, f)
