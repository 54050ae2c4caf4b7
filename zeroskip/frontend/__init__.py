"""The ONNX front end: a user's model checked and described (:mod:`.model`), its inputs bound
(:mod:`.inputs`), quantized or pruned (:mod:`.quantize`, :mod:`.prune`), its matrix products
lowered to the array's GEMMs (:mod:`.lowering`), the graph run node by node with everything
else on the host (:mod:`.graph`, :mod:`.infer`) and compared with the model's definition
(:mod:`.reference`); messages name options in the caller's :mod:`.terms`. The ``zeroskip run``
command around it lives in :mod:`zeroskip.apps.run`, the Python API in :mod:`zeroskip.api`."""
