"""The distribution: every module of hw/, sim/, tb/, platforms/ lands inside the `zeroskip`
namespace of a plain (non-editable) wheel, and nothing leaks to the top level."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"hw": "zeroskip/hw", "sim": "zeroskip/sim", "tb": "zeroskip/tb",
           "platforms": "zeroskip/platforms", "zeroskip": "zeroskip"}


def test_wheel_holds_every_module_in_the_namespace(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("zeroskip-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{target}/{path.relative_to(ROOT / folder)}"
                for folder, target in FOLDERS.items()
                for path in (ROOT / folder).rglob("*.py")}
    assert expected <= names, sorted(expected - names)
    top_level = {name.split("/")[0] for name in names}
    assert top_level <= {"zeroskip", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}"
                         ".dist-info"}, top_level
