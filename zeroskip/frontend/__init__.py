"""The ONNX front end: a model's matrix products lowered to the array's GEMMs
(:mod:`.lowering`), the graph run node by node with everything else on the host (:mod:`.graph`).
The ``zeroskip run`` command around it lives in :mod:`zeroskip.apps.run`."""
