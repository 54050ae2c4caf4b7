"""PLL settings: the divider parameters of the iCE40 (SB_PLL40) and ECP5 (EHXPLLL) PLLs that
give a board's clock exactly (:class:`zeroskip.platforms.wrapper.BoardWrapper` instantiates
them)."""

__all__ = ["ice40_pll", "ecp5_pll"]


def ice40_pll(fin_mhz, fout_mhz):
    """SB_PLL40 divider parameters for ``fout_mhz`` from ``fin_mhz``, as ``icepll`` finds them.

    fout = fin * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ), with the phase detector at 10..133 MHz and
    the VCO at 533..1066 MHz (iCE40 sysCLOCK PLL design guide). Raises if no setting is exact.
    """
    for divr in range(16):
        pfd = fin_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                if abs(vco / 2 ** divq - fout_mhz) < 1e-6:
                    # loop filter range by phase detector frequency (icepll's table)
                    filter_range = sum(pfd >= edge for edge in (17, 26, 44, 66, 101)) + 1
                    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                            "FILTER_RANGE": filter_range}
    raise ValueError(f"No iCE40 PLL setting gives exactly {fout_mhz} MHz from {fin_mhz} MHz")


def ecp5_pll(fin_mhz, fout_mhz):
    """EHXPLLL divider parameters for ``fout_mhz`` on CLKOP from ``fin_mhz`` (CLKOP feedback).

    fout = fin * CLKFB_DIV / CLKI_DIV, VCO = fout * CLKOP_DIV at 400..800 MHz (ECP5 sysCLOCK
    guide), taken nearest mid-range as ``ecppll`` does; the phase setting is what ``ecppll``
    emits, (CLKOP_DIV - 1) // 2.
    """
    for clki in range(1, 129):
        for clkfb in range(1, 129):
            if abs(fin_mhz * clkfb / clki - fout_mhz) > 1e-6:
                continue
            clkops = [d for d in range(1, 129) if 400 <= fout_mhz * d <= 800]
            if clkops:
                clkop = min(clkops, key=lambda d: abs(fout_mhz * d - 600))
                return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                        "CLKOP_CPHASE": (clkop - 1) // 2}
    raise ValueError(f"No ECP5 PLL setting gives exactly {fout_mhz} MHz from {fin_mhz} MHz")
