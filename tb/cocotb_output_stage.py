"""cocotb testbench of the output stage (hw/engine/output_stage.py): per layer, the parameter
memory written and the settings set, then the elements streamed in with random idle cycles on
the input and random backpressure on the output; every output checked against its expected
word (value and tag: none lost, repeated or reordered). The job comes from
tb/test_output_stage_rtl.py, already packed into port words."""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from zeroskip.sim.rtl.harness import write_beats


class OutputStageTB:
    def __init__(self, dut, job):
        self.dut = dut
        self.job = job
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        dut = self.dut
        for name in ("i__valid", "o__ready", "params_write__en"):
            getattr(dut, name).value = 0
        dut.rst.value = 1
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        await FallingEdge(dut.clk)

    async def run_layer(self, layer, valid_p, ready_p, seed):
        """Stream one layer; returns (output words, cycles from the first offer to the last
        output taken)."""
        dut = self.dut
        assert not dut.busy.value, "busy before the layer"
        await write_beats(dut, "params_write", layer["params"])
        dut.settings.value = layer["settings"]
        rand = random.Random(seed)
        inputs, n = layer["inputs"], len(layer["inputs"])
        sent, received, cycles = 0, [], 0
        while len(received) < n:
            # Inputs change and outputs are sampled on the falling edge: a transfer happens on
            # the next rising edge when valid and ready are both up now.
            offer = sent < n and rand.random() < valid_p
            dut.i__valid.value = int(offer)
            if offer:
                dut.i__payload.value = inputs[sent]
            take = rand.random() < ready_p
            dut.o__ready.value = int(take)
            if take and dut.o__valid.value:
                received.append(dut.o__payload.value.to_unsigned())
            if offer and dut.i__ready.value:
                sent += 1
            await FallingEdge(dut.clk)
            cycles += 1
            assert cycles < self.job["timeout_cycles_per_element"] * n + 1000, \
                f"{layer['name']}: the stage hung ({sent} in, {len(received)} out)"
        dut.i__valid.value = 0
        dut.o__ready.value = 1
        for _ in range(self.job["latency"] + 2):
            assert not dut.o__valid.value, f"{layer['name']}: an element too many came out"
            await FallingEdge(dut.clk)
        assert not dut.busy.value, f"{layer['name']}: busy after its last element"
        return received, cycles


@cocotb.test()
async def output_stage_layers(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    tb = OutputStageTB(dut, job)
    await tb.reset()
    outcomes = []
    pressures = job["pressures"]
    for index, layer in enumerate(job["layers"]):
        valid_p, ready_p = pressures[index % len(pressures)]
        received, cycles = await tb.run_layer(layer, valid_p, ready_p, seed=index)
        expected = layer["expected"]
        assert len(received) == len(expected), \
            f"{layer['name']}: {len(received)} words out for {len(expected)} in"
        for i, (got, want) in enumerate(zip(received, expected)):
            assert got == want, (f"{layer['name']} element {i} (valid p={valid_p}, ready "
                                 f"p={ready_p}): got {got:#x}, expected {want:#x} "
                                 f"(value in the low 8 bits, the tag above)")
        outcomes.append({"name": layer["name"], "elements": len(received), "cycles": cycles,
                         "valid_p": valid_p, "ready_p": ready_p})
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(outcomes, f)
