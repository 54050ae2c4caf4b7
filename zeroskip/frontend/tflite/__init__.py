"""TFLite models in: full-integer int8 ``.tflite`` files read (:mod:`.model`), their convolutions
and fully connected layers run on the array, everything else on the host with TFLite's integer
semantics, checked against LiteRT's reference kernels."""
