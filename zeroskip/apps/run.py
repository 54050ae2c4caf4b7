"""``zeroskip run MODEL.onnx|MODEL.tflite``: a user's model on the RTL, checked against its
definition (an ONNX graph as written; a TFLite model by LiteRT's reference kernels).

Every input is checked before anything runs and nothing is written unless the whole run
succeeds (``DIR/outputs.npz``, ``report.json``, ``report.md``, ``layers.png``, and with
``--calibrate`` the model that ran, ``quantized.onnx``; with ``--prune`` on a ``.tflite``,
``pruned.tflite``). The one run that fails after writing
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

from zeroskip.apps.run_report import format_report, format_resident_report, plot_layers
from zeroskip.frontend.infer import infer
from zeroskip.frontend.inputs import (bind_inputs, load_calibration, load_labels,
                                      load_single_array)
from zeroskip.frontend.model import load_model
from zeroskip.frontend.quantize import check_calibratable, check_prune, prepare_model
from zeroskip.frontend.reference import check_definition
from zeroskip.frontend.terms import CLI
from zeroskip.gemm_runner import GemmRunner
from zeroskip.sim.loaders import BadInput


__all__ = ["run_model"]


def run_model(model_path, *, out, input=None, inputs=None, labels=None, calibrate_path=None,
              prune=None, rows=None, cols=None, format=None, nm=None, mode="skip",
              sim="verilator", board=None, port=None, progress=False,
              energy_table=None, depths=None, resident=False) -> dict:
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
    from zeroskip.apps.outputs import check_folder

    check_folder(out, "--out")
    name = str(model_path)
    from zeroskip.frontend.tflite.model import is_tflite
    if resident:
        from zeroskip.frontend.resident_run import check_resident
        check_resident(is_tflite(model_path), mode, board, port, energy_table, CLI)
    if is_tflite(model_path):
        if calibrate_path is not None:
            raise BadInput("--calibrate: a .tflite model is quantized already (full-integer "
                           "int8); drop --calibrate")
        report = _run_tflite(model_path, out=out, input=input, inputs=inputs, labels=labels,
                             prune=prune, progress=progress,
                             runner=dict(rows=rows, cols=cols, format=format, nm=nm,
                                         mode=mode, sim=sim, board=board, port=port,
                                         energy_table=energy_table, depths=depths))
        return report
    model = load_model(model_path)
    check_prune(prune, CLI)
    accelerator = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                             board=board, port=port, energy_table=energy_table, depths=depths)
    feeds = bind_inputs(model, input, inputs)
    if labels is not None:
        labels = load_labels(labels, feeds)
    calibration = None
    if calibrate_path is not None:
        check_calibratable(model, name, CLI)
        calibration = load_calibration(calibrate_path)
    model = prepare_model(model, calibration, prune, name=name, terms=CLI)
    if resident:
        from zeroskip.frontend.resident_run import infer_resident
        ours, report = infer_resident(model, feeds, accelerator.config, labels=labels, sim=sim,
                                      name=name, board=board, port=port, terms=CLI)
    else:
        ours, report = infer(model, feeds, accelerator, labels=labels, progress=progress,
                             name=name, terms=CLI)
    out = Path(out)
    if calibrate_path is not None:
        # the summary and report.md say where it went: it is the model that ran
        report["quantized_model"] = str(out / "quantized.onnx")
    extra = {}
    if calibrate_path is not None:
        import onnx
        extra["quantized.onnx"] = lambda tmp: onnx.save(model, str(tmp))
    _write(out, ours, report, extra)
    check_definition(ours, report)  # a wrong answer never passes: after the files, for diagnosis
    return report


def _run_tflite(model_path, *, out, input, inputs, labels, prune, progress, runner) -> dict:
    """The command for a ``.tflite`` model (:mod:`zeroskip.frontend.tflite`)."""
    from zeroskip.frontend.tflite.infer import infer as infer_tflite
    from zeroskip.frontend.tflite.inputs import bind_input
    from zeroskip.frontend.tflite.model import load
    from zeroskip.frontend.tflite.prune import check_sparsity, prune as prune_model

    name = str(model_path)
    model = load(model_path)
    if prune is not None:
        check_sparsity(prune, "--prune")
    accelerator = GemmRunner(**runner)
    x = bind_input(model, input, inputs)
    if labels is not None:
        labels = load_single_array(labels, "--labels", "one integer label per sample")
    extra = {}
    pruned = None
    if prune is not None:
        content, pruned = prune_model(model, prune)
        model = load(content)
        extra["pruned.tflite"] = lambda tmp: Path(tmp).write_bytes(content)
    ours, report = infer_tflite(model, x, accelerator, labels=labels, progress=progress,
                                name=name)
    if pruned is not None:
        report["pruned_model"] = str(Path(out) / "pruned.tflite")
        report["pruned_sparsity"] = pruned
    _write(Path(out), ours, report, extra)
    check_definition(ours, report)
    return report


def _write(out: Path, ours: dict, report: dict, extra: dict) -> None:
    """outputs.npz, report.json, report.md, layers.png (not for a resident run) and ``extra``
    (name -> writer), all together or none."""
    from zeroskip.apps.outputs import Outputs
    out.mkdir(parents=True, exist_ok=True)
    with Outputs() as files:
        files.write(out / "outputs.npz", lambda tmp: _savez(tmp, ours))
        files.write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
        if report["total"].get("resident"):
            files.write_text(out / "report.md", format_resident_report(report))
        else:
            files.write_text(out / "report.md", format_report(report))
            files.write(out / "layers.png", lambda tmp: plot_layers(report["layers"], tmp))
        for file, writer in extra.items():
            files.write(out / file, writer)
        files.commit()


def _savez(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
