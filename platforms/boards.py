"""The supported boards: :class:`Board` names an amaranth-boards platform, the array
configuration that fits its FPGA and the PLL clock it closes timing at; :data:`BOARDS` is the
catalog.

The rest of a board's life is elsewhere: :mod:`zeroskip.platforms.wrapper` (its PLL and pins
around the core), :mod:`zeroskip.platforms.flow` (the bitstream build),
:mod:`zeroskip.platforms.program` (programming it).
"""

from dataclasses import dataclass, replace

from zeroskip.config import ArrayConfig
from zeroskip.hw.engine.descriptor import EngineParams

__all__ = ["Board", "BOARDS"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    ``luts_total``, ``dsps_total`` and ``brams_total`` are the device's totals for the report
    (nextpnr's own "available" counts include BELs a design can never use, e.g. iCE40 LCs and
    ECP5 FFs counted separately from LUTs). ``program_argv`` is the openFPGALoader command, with
    ``{bitstream}`` standing for the file.
    """
    name: str
    platform: str          # "module:Class" in amaranth_boards, imported on use
    family: str            # "ice40" or "ecp5"
    device: str
    config: ArrayConfig
    clock_mhz: float       # PLL output, the `sync` domain
    bitstream_suffix: str
    luts_total: int
    dsps_total: int
    brams_total: int
    program_argv: tuple
    # the dense baseline (``--arch dense``) on this board: its configuration and clock
    dense_config: ArrayConfig | None = None
    dense_clock_mhz: float | None = None
    # nextpnr options beyond the flow's own (``flow.NEXTPNR_OPTS``), for this configuration
    # and for the dense baseline's
    nextpnr_options: str = ""
    dense_nextpnr_options: str = ""
    # the network engine (``run --resident --board``): its fixed memories, around this
    # board's array with resident weights (None: the board has none)
    engine: EngineParams | None = None

    def for_arch(self, arch):
        """This board with the configuration and clock of ``arch`` (``"zeroskip"`` or
        ``"dense"``) as its own."""
        if arch == "zeroskip":
            return self
        if arch != "dense" or self.dense_config is None:
            raise ValueError(f"{self.name} has no {arch!r} configuration")
        return replace(self, config=self.dense_config, clock_mhz=self.dense_clock_mhz,
                       dense_config=None, dense_clock_mhz=None, engine=None,
                       nextpnr_options=self.dense_nextpnr_options, dense_nextpnr_options="")

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(__import__(f"amaranth_boards.{module}", fromlist=[cls]), cls)()


# the ULX3S's array (the reasons for each choice: its entry in BOARDS)
_ULX3S = ArrayConfig(rows=16, cols=8, fmt="csc", max_k=256, act_depth=512,
                     weight_depth=1023, pointer_depth=32, out_depth=16, pipelined=True,
                     column_results=True, multipliers="ecp5_registered",
                     act_memories="ecp5_outreg", energy_counters=False)

BOARDS = {
    # 16 PEs in one column: the UP5K's 8 SB_MAC16 each multiply for two PEs (8x8 mode); one
    # EBR of activations per PE; the column's results in one memory (column_results: 16 per
    # PE and run, 2 EBR; a result memory per PE would need 32 EBR more than the 30 there are,
    # and one output per PE and run, in its accumulator, reached 0.55 of ideal at 90%
    # sparsity on 64x256x64 against 0.94 now); 512 nonzeros per run; 24-bit accumulators
    # (enough for K = 256) and 32-bit counters, because flip-flops are what runs out first.
    # One decoder lane: a second lane and its counters would not fit at 30 MHz.
    "icebreaker": Board(
        name="icebreaker", platform="icebreaker:ICEBreakerPlatform", family="ice40",
        device="iCE40UP5K-SG48",
        config=ArrayConfig(rows=16, cols=1, fmt="csc", max_k=256, act_depth=256,
                           weight_depth=512, pointer_depth=17, out_depth=16,
                           column_results=True, acc_width=24,
                           counter_width=32, multipliers="ice40_pairs",
                           energy_counters=False),
        clock_mhz=30, bitstream_suffix=".bin", luts_total=5280, dsps_total=8, brams_total=30,
        # the iCEBreaker's FT2232H flash interface is openFPGALoader's generic iCE40 pinout
        program_argv=("openFPGALoader", "-b", "ice40_generic", "{bitstream}"),
        # the dense baseline: the same 16 PEs (8 SB_MAC16, two PEs each) as a 4 x 4 array;
        # one activation buffer per row and one weight memory per column; each column's
        # results in one memory of one result per word (column_results: 16 outputs per PE and
        # run, two block RAMs). (Before: one result word of 96 bits per column in flip-flops,
        # a run per output; a block RAM per 16 bits of it would have needed 24, and two words
        # per column filled 93% of the logic cells and missed 30 MHz.)
        dense_config=ArrayConfig(rows=4, cols=4, arch="dense", max_k=256, act_depth=1024,
                                 weight_depth=1024, pointer_depth=5, out_depth=16,
                                 column_results=True, acc_width=24, counter_width=32,
                                 multipliers="ice40_pairs", energy_counters=False),
        dense_clock_mhz=30),
    # 128 PEs (16 x 8), each with a MULT18X18D whose input and output registers are in use
    # and a DP16KD of activations whose output register is in use, pipelined csc lanes and
    # PEs (every block-RAM read registered before logic uses it; a lane moves to its next
    # column from registers, a cycle after the column's last token; its fault checks compare
    # a cycle ahead), a result memory per column (column_results: 16 outputs per PE and run,
    # one DP16KD), the accelerator's reset and activation write port from flip-flops
    # (fanout_registers). 100 MHz: 110.78 MHz at seed 1 (99.09 at seed 2). Memories of one or
    # two block RAMs each (512 activations per PE, 1023 nonzeros per lane). With a result
    # memory per PE (distributed RAM) and the result port a word of every row's results, the
    # 16 x 8 did not route (router1: 98,000 overused wires after 38 minutes).
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="ulx3s:ULX3S_85F_Platform", family="ecp5",
        device="LFE5U-85F-6BG381",
        config=_ULX3S,
        clock_mhz=100, bitstream_suffix=".bit", luts_total=83640, dsps_total=156,
        brams_total=208,
        program_argv=("openFPGALoader", "-b", "ulx3s", "{bitstream}"),
        # the dense baseline: 128 PEs (16 x 8) with the zeroskip build's four timing measures:
        # registered MULT18X18D, DP16KD activation memories with their output registers, a
        # result memory per column (column_results) and the reset and activation write port
        # from flip-flops (fanout_registers follows), 24-bit accumulators; not replicated, so
        # its memories are deep (2048 activations per row, 4096 weights per column).
        # nextpnr's router2: router1 still had 32 arcs to route after 65 minutes; router2
        # routes it in about 8 minutes, and seed 5 meets 100 MHz (101.09; seeds 1-4: 96.09,
        # 99.45, 85.17, 82.16, their critical path the host link's reply byte into its CRC).
        # (Before: 8 x 8 at 90 MHz; all 156 multipliers (12 x 13) did not route.)
        dense_config=ArrayConfig(rows=16, cols=8, arch="dense", max_k=256, act_depth=2048,
                                 weight_depth=4096, pointer_depth=33, out_depth=16,
                                 pipelined=True, column_results=True, acc_width=24,
                                 multipliers="ecp5_registered", act_memories="ecp5_outreg",
                                 energy_counters=False),
        dense_clock_mhz=100, dense_nextpnr_options="--router router2",
        # the engine's memories, in what block RAM the array leaves (63 DP16KD): feature maps
        # of 1,024 activations (two of them; a DP16KD each, copied for each of the gather's
        # 8 read ports), an output/pooling map of 2,048, 512 output channels' parameters and
        # column-map words, 64 program steps (in LUT RAM), lookup tables for 208 channels (the
        # digits MLP's second requantization needs 202; 26 DP16KD). Its board top's first
        # build (seed 1): 183 DP16KD, 132 MULT18X18D, 36,695 LUT/carry cells, placed at an
        # estimated 60.13 MHz: the engine's own logic is not yet pipelined for 100 MHz.
        engine=EngineParams(_ULX3S.with_(resident=True), fm_depth=2048, aux_depth=2048,
                            param_depth=512, colmap_depth=512, program_depth=64,
                            lut_depth=208 * 256, gather_ports=8)),
}
