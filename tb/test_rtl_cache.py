"""The simulator build cache's key (sim/rtl/cache.py): every gateware file shapes a build, so
an edit to any of them must give new build names."""

from pathlib import Path

from zeroskip import hw
from zeroskip.sim.rtl.cache import gateware_sources

HW = Path(hw.__file__).parent


def test_the_gateware_digest_covers_every_gateware_file_but_the_bus_tops():
    hashed = {path.resolve() for path in gateware_sources()}
    every = {path.resolve() for path in HW.rglob("*.py")}
    bus = {path.resolve() for path in (HW / "bus").rglob("*.py")}
    assert every - bus <= hashed and not bus & hashed
    # the subpackages, each file of them (the link's four modules included)
    for package in ("link", "decoders"):
        files = {path.resolve() for path in (HW / package).glob("*.py")}
        assert len(files) >= 4 and files <= hashed, package
    # and the simulator build's flags and patches
    assert {path.name for path in gateware_sources()} >= {"config.py", "build.py"}
