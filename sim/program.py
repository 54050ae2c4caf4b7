"""The network engine's compiler: a network's layers to the engine's layer program, its
parameter memory, column map and resident lane memories (:mod:`zeroskip.hw.engine`).

A network here is a chain of :class:`NetLayer`: each a convolution over an HWC int8 feature
map (a fully connected layer is the 1×1 kernel over a 1×1×K map), its GEMM's int8 weights
(K rows in im2col order: channel, kernel row, kernel column), per output channel an int32 bias
and the output stage's requantization (:mod:`zeroskip.hw.engine.output_stage`), and optionally a
pooling of its output. Every activation is stored as int8 (a uint8 code minus 128, as the front
end's lowering shifts it).

Memory map (:class:`EngineProgram`):

- feature-map memory (the gather unit's): the input map from 0; layer ``l`` reads region
  ``l % 2`` (``[0, S)`` or ``[S, 2S)``, ``S`` the largest map any layer reads) and writes the
  other;
- auxiliary map: a pooled layer's map before pooling, and the last layer's output, from 0;
- parameter memory: each layer's channels from its ``param_base``;
- column map: each layer's lanes, ``lane_stride`` words each, from its ``colmap_base``;
- lane memories: :func:`zeroskip.sim.resident.plan_network`'s regions (every column kept, so
  the drain writes every output channel).

What does not fit is refused with :class:`EngineTooSmall` (a ValueError) naming the resource,
what the network needs and what the engine has. :func:`reference` computes the same int8
outputs in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zeroskip.config import Mode
from zeroskip.frontend.lowering import conv_output_shape, im2col
from zeroskip.hw.engine.descriptor import EngineParams, Step
from zeroskip.hw.engine.gather import GatherLayer
from zeroskip.hw.engine.output_stage import Rule, params_layout
from zeroskip.hw.engine.pool import PoolLayer
from zeroskip.hw.layouts import pack
from zeroskip.sim.loaders import as_int8_matrix
from zeroskip.sim.resident import ResidentNetwork, plan_network

__all__ = ["EngineTooSmall", "NetLayer", "EngineProgram", "compile_network", "reference",
           "predicted_array_cycles", "engine_params_for"]


class EngineTooSmall(ValueError):
    """The network does not fit the engine: the message names the resource, what the network
    needs and what the engine has."""


@dataclass
class NetLayer:
    """One layer of a network on the engine.

    Parameters
    ----------
    height, width, channels : int
        The input feature map (HWC).
    weights : ndarray of int8, (K, N)
        K = channels × kernel rows × kernel columns, in im2col order.
    params : list of dict
        Per output channel, its parameter word (:func:`~zeroskip.hw.engine.output_stage.
        onnx_params` or ``tflite_params``: the bias, the zero-point correction included).
    settings : dict
        The output stage's settings (``onnx_settings`` or ``tflite_settings``).
    kernel, strides, pads, dilations :
        The convolution's geometry (ONNX's order; pads top, left, bottom, right).
    pad_value : int
        The input's zero point, stored (the padding's value).
    pool : dict or None
        Pooling of the output: ``filter``, ``strides``, optional ``pads`` (top, left),
        ``average`` (bool), ``low``, ``high`` (:class:`~zeroskip.hw.engine.pool.PoolLayer`).
    table : ndarray of int8, (N, 256), or None
        A second requantization after the output stage, per channel: output ``v`` of channel
        ``n`` becomes ``table[n, v + 128]`` (the engine's lookup table).
    """
    height: int
    width: int
    channels: int
    weights: np.ndarray
    params: list
    settings: dict
    kernel: tuple = (1, 1)
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    dilations: tuple = (1, 1)
    pad_value: int = 0
    pool: dict | None = None
    table: np.ndarray | None = None

    def gather(self, **kwargs) -> GatherLayer:
        return GatherLayer(self.height, self.width, self.channels, kernel=self.kernel,
                           strides=self.strides, pads=self.pads, dilations=self.dilations,
                           pad_value=self.pad_value, **kwargs)

    @property
    def conv_shape(self) -> tuple[int, int]:
        """The convolution's output rows and columns."""
        oh, ow = conv_output_shape([self.height, self.width], list(self.kernel),
                                   list(self.strides), list(self.pads), list(self.dilations))
        return oh, ow

    @property
    def n(self) -> int:
        return self.weights.shape[1]

    def pool_layer(self, src_base=0, dst_base=0) -> PoolLayer | None:
        if self.pool is None:
            return None
        oh, ow = self.conv_shape
        filt, strides = tuple(self.pool["filter"]), tuple(self.pool["strides"])
        top, left = tuple(self.pool.get("pads", (0, 0)))
        out = (pool_extent(oh, filt[0], strides[0], top, self.pool.get("out_shape")),
               pool_extent(ow, filt[1], strides[1], left, self.pool.get("out_shape"), 1))
        return PoolLayer(oh, ow, self.n, filt, strides, out, pad_top=top, pad_left=left,
                         average=bool(self.pool.get("average", False)),
                         low=self.pool.get("low", -128), high=self.pool.get("high", 127),
                         src_base=src_base, dst_base=dst_base)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """The output map (rows, columns, channels), after pooling."""
        pool = self.pool_layer()
        oh, ow = pool.out_shape if pool is not None else self.conv_shape
        return oh, ow, self.n


def pool_extent(size, filt, stride, pad, out_shape=None, axis=0):
    """Output length of a pooling axis: ``out_shape`` if given, else ONNX's floor rule."""
    if out_shape is not None:
        return int(out_shape[axis])
    return (size + pad - filt) // stride + 1


@dataclass
class EngineProgram:
    """A network compiled for an engine: what the host loads, and where the output is.

    Attributes
    ----------
    params : EngineParams
    layers : list of NetLayer
    network : ResidentNetwork
        The lane memories' images (``network.lane_images``) and each layer's bases.
    steps : list of dict
        The program words (fields of ``params.step_layout``).
    param_words, colmap_words, lut_words : list
        The parameter memory's words (dicts of ``params_layout``), the column map's and the
        lookup table's (int8).
    input_shape, output_shape : (int, int, int)
        The input map (from feature-map address 0) and the output map (from auxiliary
        address 0), HWC.
    runs_per_layer : list of int
    """
    params: EngineParams
    layers: list
    network: ResidentNetwork
    steps: list = field(default_factory=list)
    param_words: list = field(default_factory=list)
    colmap_words: list = field(default_factory=list)
    lut_words: list = field(default_factory=list)
    input_shape: tuple = (1, 1, 1)
    output_shape: tuple = (1, 1, 1)
    runs_per_layer: list = field(default_factory=list)
    run_tokens: list = field(default_factory=list)

    def beats(self) -> dict:
        """The host's load beats: ``{"program": [(addr, word)], "params": ..., "colmap":
        ..., "lut": ..., "lanes": {memory: [(addr, word, mask)]}}``."""
        from zeroskip.sim.rtl.packing import weight_beats
        layout = self.params.step_layout
        return {
            "program": [(i, pack(layout, step)) for i, step in enumerate(self.steps)],
            "params": [(i, pack(params_layout(), word))
                       for i, word in enumerate(self.param_words)],
            "colmap": [(i, word) for i, word in enumerate(self.colmap_words)],
            "lut": [(i, int(word) & 0xFF) for i, word in enumerate(self.lut_words)],
            "lanes": weight_beats(self.params.config, self.network),
        }

    def input_beats(self, x) -> list:
        """The input map's write beats: ``x`` (HWC int8, or its flattening) from address 0,
        each activation as its 8-bit two's complement."""
        x = np.asarray(x, dtype=np.int8).reshape(-1)
        if x.size != int(np.prod(self.input_shape)):
            raise ValueError(f"the input has {x.size} activations, the network's input map "
                             f"{self.input_shape} holds {int(np.prod(self.input_shape))}")
        return [(i, int(v) & 0xFF) for i, v in enumerate(x)]

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))


def _fits(resource, need, have):
    if need > have:
        raise EngineTooSmall(f"{resource}: the network needs {need:,}, the engine has {have:,}")


def compile_network(layers, params: EngineParams) -> EngineProgram:
    """The program of ``layers`` (a list of :class:`NetLayer`) for an engine of ``params``.

    Raises
    ------
    EngineTooSmall, NetworkTooLarge
        A resource the network overflows (named, with the need and what the engine has).
    ValueError
        Layers that do not chain (a layer's input map is not its predecessor's output, in
        activations), pooling after the last layer, or a malformed layer.
    """
    config = params.config
    layers = list(layers)
    if not layers:
        raise ValueError("a network needs at least one layer")
    for index, layer in enumerate(layers):
        layer.weights = as_int8_matrix(layer.weights, f"layers[{index}].weights")
        k = layer.channels * layer.kernel[0] * layer.kernel[1]
        if layer.weights.shape[0] != k:
            raise ValueError(f"layer {index}: weights have {layer.weights.shape[0]} rows, its "
                             f"patch has {k} (channels × kernel)")
        if len(layer.params) != layer.n:
            raise ValueError(f"layer {index}: {len(layer.params)} parameter words for "
                             f"{layer.n} output channels")
        if index and int(np.prod(layers[index - 1].out_shape)) != \
                layer.height * layer.width * layer.channels:
            raise ValueError(f"layer {index} reads a {layer.height}×{layer.width}×"
                             f"{layer.channels} map, layer {index - 1} writes "
                             f"{layers[index - 1].out_shape}")
        _fits(f"output channels (layer {index})", layer.n, params.max_channels)
    if layers[-1].pool is not None:
        raise ValueError("pooling after the last layer: the engine's output is the last "
                         "layer's own output map")
    network = plan_network([layer.weights for layer in layers], config,
                           drop_empty_columns=False)
    # feature-map regions: every map a layer reads, twice (read one, write the other)
    region = max(layer.height * layer.width * layer.channels for layer in layers)
    _fits("feature-map memory (fm_depth)", 2 * region, params.fm_depth)
    aux_need = max([int(np.prod(layers[-1].out_shape))] +
                   [layer.conv_shape[0] * layer.conv_shape[1] * layer.n
                    for layer in layers if layer.pool is not None])
    _fits("auxiliary map (aux_depth)", aux_need, params.aux_depth)
    _fits("parameter memory (param_depth)", sum(layer.n for layer in layers),
          params.param_depth)
    strides = [max(len(cols) for cols in resident.lane_columns) for resident in network.layers]
    _fits("column map (colmap_depth)", sum(config.cols * s for s in strides),
          params.colmap_depth)
    _fits("lookup table (lut_depth)", 256 * sum(layer.n for layer in layers
                                                if layer.table is not None), params.lut_depth)

    program = EngineProgram(params=params, layers=layers, network=network,
                            input_shape=(layers[0].height, layers[0].width, layers[0].channels),
                            output_shape=layers[-1].out_shape)
    param_base = colmap_base = 0
    for index, layer in enumerate(layers):
        if layer.table is not None and np.shape(layer.table) != (layer.n, 256):
            raise ValueError(f"layer {index}: a table of shape {np.shape(layer.table)}, its "
                             f"{layer.n} channels need ({layer.n}, 256)")
    for index, (layer, resident, stride) in enumerate(zip(layers, network.layers, strides)):
        last = index == len(layers) - 1
        in_base = region * (index % 2)
        out_base = 0 if last or layer.pool is not None else region * ((index + 1) % 2)
        to_aux = last or layer.pool is not None
        gemm = layer.gather()
        acts = np.zeros((gemm.m, gemm.k), dtype=np.int8)
        runs = network.program(index, acts, Mode.SKIP).runs
        lut = {"lut": int(layer.table is not None), "lut_base": len(program.lut_words)}
        if layer.table is not None:
            program.lut_words += [int(v) for v in np.asarray(layer.table).reshape(-1)]
        program.runs_per_layer.append(len(runs))
        for run in runs:
            program.run_tokens.append(run.tokens)
            gather = layer.gather(tile_first=run.m_start // config.rows, tiles=run.m_tiles,
                                  fm_base=in_base).descriptor(params.gather)
            program.steps.append({
                "kind": Step.GEMM, "to_aux": int(to_aux), "gather": gather,
                "job": run.job(Mode.SKIP), "settings": layer.settings,
                "param_base": param_base, "colmap_base": colmap_base, "lane_stride": stride,
                "channels": layer.n, "tile_step": config.rows * layer.n,
                "pixel_first": out_base + run.m_start * layer.n, **lut,
            })
        pool = layer.pool_layer(src_base=0, dst_base=region * ((index + 1) % 2))
        if pool is not None:
            program.steps.append({"kind": Step.POOL, "pool": pool.descriptor(params.pool)})
        program.param_words += list(layer.params)
        for cols in resident.lane_columns:
            program.colmap_words += list(cols) + [0] * (stride - len(cols))
        param_base += layer.n
        colmap_base += config.cols * stride
    program.steps.append({"kind": Step.END})
    _fits("program memory (program_depth)", len(program.steps), params.program_depth)
    return program


def engine_params_for(layers, config) -> EngineParams:
    """The smallest engine of ``config`` (memories of powers of two) that holds ``layers``:
    for a simulation sized to a model; a fixed engine (a board's) is checked by
    :func:`compile_network` instead."""
    from zeroskip.sim.resident import plan_network

    def power(value, least=16):
        return max(least, 1 << (max(int(value), 1) - 1).bit_length())

    network = plan_network([layer.weights for layer in layers], config,
                           drop_empty_columns=False)
    region = max(layer.height * layer.width * layer.channels for layer in layers)
    aux = max([int(np.prod(layers[-1].out_shape))] +
              [layer.conv_shape[0] * layer.conv_shape[1] * layer.n
               for layer in layers if layer.pool is not None])
    colmap = sum(config.cols * max(len(cols) for cols in resident.lane_columns)
                 for resident in network.layers)
    tables = 256 * sum(layer.n for layer in layers if layer.table is not None)
    steps = 0
    for index, layer in enumerate(layers):
        gemm = layer.gather()
        acts = np.zeros((gemm.m, gemm.k), dtype=np.int8)
        steps += len(network.program(index, acts).runs) + (layer.pool is not None)
    return EngineParams(config, fm_depth=power(2 * region), aux_depth=power(aux),
                        param_depth=power(sum(layer.n for layer in layers)),
                        colmap_depth=power(colmap), program_depth=power(steps + 1),
                        lut_depth=power(tables, 256) if tables else 0)


def predicted_array_cycles(program: EngineProgram) -> int:
    """The accelerator's cycles over an inference, from the cycle model (the runs'
    ``cycles`` counters summed)."""
    from zeroskip.sim import model
    return sum(model.run_cycles(program.params.config, tokens) for tokens in program.run_tokens)


def _requantize(acc, params, settings):
    """The output stage's arithmetic in NumPy (the host paths' own functions)."""
    from zeroskip.frontend.lowering import requantize as onnx_requantize
    from zeroskip.sim import requantize as tflite
    bias = np.array([p["bias"] for p in params], dtype=np.int64)
    total = acc.astype(np.int64) + bias
    zero, low, high = settings["zero_point"], settings["low"], settings["high"]
    if Rule(settings["rule"]) == Rule.ONNX:
        scale = np.array([p["multiplier"] for p in params], dtype=np.uint32).view(np.float32)
        out = onnx_requantize(total, scale, zero, np.int8).astype(np.int64)
    else:
        wrapped = ((total + 2 ** 31) % 2 ** 32) - 2 ** 31
        multiplier = np.array([p["multiplier"] for p in params], dtype=np.int64)
        shift = np.array([p["shift"] for p in params], dtype=np.int64)
        out = tflite.multiply_by_quantized_multiplier(wrapped, multiplier, shift,
                                                      "double") + zero
    return np.clip(out, low, high).astype(np.int8)


def reference(layers, x) -> np.ndarray:
    """The network's output map (HWC int8) for the input map ``x`` (HWC int8), in NumPy: what
    the engine must produce bit for bit."""
    fm = np.asarray(x, dtype=np.int8).reshape(-1)
    for layer in layers:
        chw = fm.reshape(layer.height, layer.width, layer.channels).transpose(2, 0, 1)
        cols, out = im2col(chw[None].astype(np.int64), list(layer.kernel), list(layer.strides),
                           list(layer.pads), list(layer.dilations), layer.pad_value)
        acc = cols @ np.asarray(layer.weights, dtype=np.int64)
        y = _requantize(acc, layer.params, layer.settings)
        if layer.table is not None:
            y = np.asarray(layer.table, dtype=np.int8)[np.arange(layer.n),
                                                       y.astype(np.int64) + 128]
        y = y.reshape(*out, layer.n)
        pool = layer.pool_layer()
        if pool is not None:
            y = _pool(y, pool)
        fm = y.reshape(-1)
    return fm.reshape(layers[-1].out_shape)


def _pool(y, pool):
    """Max or average pooling of an HWC map as the pooling unit computes it."""
    oh, ow = pool.out_shape
    out = np.zeros((oh, ow, y.shape[2]), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * pool.strides[0] - pool.pad_top, ox * pool.strides[1] - pool.pad_left
            window = y[max(y0, 0):min(y0 + pool.filter[0], pool.height),
                       max(x0, 0):min(x0 + pool.filter[1], pool.width)].astype(np.int64)
            window = window.reshape(-1, y.shape[2])
            if pool.average:
                total, count = window.sum(axis=0), window.shape[0]
                value = (np.abs(total) + count // 2) // count * np.sign(total)
            else:
                value = window.max(axis=0)
            out[oy, ox] = value
    return np.clip(out, pool.low, pool.high).astype(np.int8)
