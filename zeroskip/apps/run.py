"""``zeroskip run MODEL.onnx``: a user's ONNX model on the RTL, checked against its definition.

Every input is checked before anything runs and nothing is written unless the whole run
succeeds (``DIR/outputs.npz``, ``report.json``, ``report.md``, ``layers.png``, and with
``--calibrate`` the model that ran, ``quantized.onnx``). The one run that fails after writing
is a wrong answer: outputs that differ from the model's definition raise
:class:`~zeroskip.frontend.reference.OutputsDiffer` (exit 1) with the files kept for diagnosis.

The work is the ONNX front end's (:mod:`zeroskip.frontend`): loading the model
(``.model``), binding the inputs (``.inputs``), quantizing or pruning (``.quantize``), the run
(``.infer``) and the comparison (``.reference``); the report's text and plot are
:mod:`zeroskip.apps.run_report`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from zeroskip.apps.run_report import format_report, plot_layers
from zeroskip.frontend.infer import infer
from zeroskip.frontend.inputs import bind_inputs, load_calibration, load_labels
from zeroskip.frontend.model import load_model
from zeroskip.frontend.quantize import check_calibratable, check_prune, prepare_model
from zeroskip.frontend.reference import check_definition
from zeroskip.frontend.terms import CLI
from zeroskip.gemm_runner import GemmRunner

# Re-exported for zeroskip.apps.sweep, which loads its models as this command does (a shim:
# new code imports them from zeroskip.frontend.model).
from zeroskip.frontend.model import DTYPES as _DTYPES, graph_inputs  # noqa: F401

__all__ = ["run_model", "format_report", "plot_layers", "load_model", "bind_inputs",
           "load_labels", "load_calibration", "prepare_model", "infer"]


def run_model(model_path, *, out, input=None, inputs=None, labels=None, calibrate_path=None,
              prune=None, rows=None, cols=None, format=None, nm=None, mode="skip",
              sim="verilator", board=None, port=None, progress=False,
              energy_table=None) -> dict:
    """The command: every input checked, the model run (:func:`infer`), the files written
    together; returns the report.

    Raises
    ------
    BadInput
        For anything the command refuses (exit 2), before anything runs or is written;
        messages name the command's flags.
    OutputsDiffer
        After writing the files, when the outputs differ from the model's definition.
    """
    from zeroskip.apps.outputs import Outputs, check_folder

    check_folder(out, "--out")
    name = str(model_path)
    model = load_model(model_path)
    check_prune(prune, CLI)
    accelerator = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                             board=board, port=port, energy_table=energy_table)
    feeds = bind_inputs(model, input, inputs)
    if labels is not None:
        labels = load_labels(labels, feeds)
    calibration = None
    if calibrate_path is not None:
        check_calibratable(model, name, CLI)
        calibration = load_calibration(calibrate_path)
    model = prepare_model(model, calibration, prune, name=name, terms=CLI)
    ours, report = infer(model, feeds, accelerator, labels=labels, progress=progress,
                         name=name, terms=CLI)
    out = Path(out)
    if calibrate_path is not None:
        # the summary and report.md say where it went: it is the model that ran
        report["quantized_model"] = str(out / "quantized.onnx")
    out.mkdir(parents=True, exist_ok=True)
    with Outputs() as files:
        files.write(out / "outputs.npz", lambda tmp: _savez(tmp, ours))
        files.write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
        files.write_text(out / "report.md", format_report(report))
        files.write(out / "layers.png", lambda tmp: plot_layers(report["layers"], tmp))
        if calibrate_path is not None:
            import onnx
            files.write(out / "quantized.onnx", lambda tmp: onnx.save(model, str(tmp)))
        files.commit()
    check_definition(ours, report)  # a wrong answer never passes: after the files, for diagnosis
    return report


def _savez(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
