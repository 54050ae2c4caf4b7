"""The network engine (issue 31): the parts that keep a whole network on chip.

A layer program walked by a sequencer; per layer a GEMM over compressed weights resident in the
decoder lanes' memories; an output stage on the result path (bias, requantization to int8, zero
point, activation clamp); the outputs written back on chip as the next layer's activations
(patch gathering for convolutions, pooling).
"""
