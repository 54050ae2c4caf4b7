"""cocotb testbench of a board top whose link drives the network engine: the host runtime
(:class:`~zeroskip.platforms.engine_runtime.EngineLink`) drives the simulated UART pins, loads
the compiled network once and runs the inputs one after another, as over a board's serial
port. Requests chosen by the job are damaged on their way (:class:`~zeroskip.tb.cocotb_board.
Saboteur`): the board must refuse each (nothing written, nothing run) and the driver retry."""

import os
import pickle

import cocotb
from cocotb.utils import get_sim_time

from zeroskip.platforms.engine_runtime import EngineLink, run_network
from zeroskip.tb.cocotb_board import CLOCK_NS, Saboteur, SimUart, start_board


@cocotb.test()
async def engine_board(dut):
    job = await start_board(dut)
    uart = SimUart(dut, job["divisor"])
    idle = job["idle_timeout"] * CLOCK_NS * 1e-9
    saboteur = Saboteur(uart, job.get("faults", {}), job.get("seed", 1))
    saboteur.stall_seconds = 3 * idle
    link = EngineLink(saboteur, job["program"].params, retries=4, settle=idle,
                      slack=4 * idle + 64 * uart.byte_seconds)
    started = get_sim_time("ns")
    inferences = await run_network(link, job["program"], job["inputs"])
    cycles = round((get_sim_time("ns") - started) / CLOCK_NS)
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump({"inferences": [vars(i) for i in inferences], "cycles": cycles,
                     "injected": saboteur.injected, "retries": link.stats.retries,
                     "causes": dict(link.stats.causes), "requests": link.stats.requests}, f)
