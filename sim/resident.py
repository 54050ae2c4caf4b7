"""The memory plan of a resident network: every layer's compressed weights in the decoder lanes'
memories at once, loaded once, and the runs of a layer that select its region by their job.

With :attr:`~zeroskip.config.ArrayConfig.resident` a lane restarts its readers at the job's
bases (:func:`zeroskip.hw.layouts.resident_bases`), the same for every lane: so each layer's
region starts at the same address in every lane, and a region is as long as its longest lane's
(the host compiler balances the lanes, so little is left unused). Per lane memory, layer ``l``
occupies:

- ``pointers`` (and bitmap's ``summaries``), from ``column_base``: the layer's column pointers
  with its first entry's address in word ``column_base``, every pointer absolute (a lane image's
  pointers plus ``entry_base``);
- ``entries`` (bitmap: ``values``), from ``entry_base``; bitmap's ``masks`` from ``mask_base``.

The per-GEMM encoders are :mod:`zeroskip.sim.compiler`'s and the formats' (a layer's lane images
are a run's), and a layer's runs are :func:`zeroskip.sim.compiler.m_tile_runs`' with the layer's
bases in their jobs and nothing to load: results are assembled and checked like any program's.

A network that does not fit is refused with :class:`NetworkTooLarge`, naming the resource,
what the network needs and what the configuration has.
"""

from dataclasses import dataclass

import numpy as np

from zeroskip.config import Mode
from zeroskip.sim import formats
from zeroskip.sim.compiler import (Program, assign_columns, column_costs, m_tile_runs,
                                   memory_depths)
from zeroskip.sim.loaders import as_int8_matrix

__all__ = ["NetworkTooLarge", "ResidentLayer", "ResidentNetwork", "plan_network", "REGIONS"]

#: The job base that places each lane memory's region of a layer, and the memory's name in a
#: refusal (the depth option that sizes it in parentheses).
REGIONS = {
    "pointers": ("column_base", "pointer memory (pointer_depth)"),
    "summaries": ("column_base", "summary memory (pointer_depth - 1)"),
    "entries": ("entry_base", "weight memory (weight_depth)"),
    "values": ("entry_base", "weight memory (weight_depth)"),
    "masks": ("mask_base", "mask memory (mask_depth)"),
}


class NetworkTooLarge(ValueError):
    """The network's weights, or one of its layers, do not fit the configuration resident."""


@dataclass
class ResidentLayer:
    """One GEMM of a resident network: ``acts (M × k) @ weights (k × n)``.

    Attributes
    ----------
    weights : ndarray of int8, (k, n)
    lane_columns : list of list of int
        Per lane, its columns of ``weights`` in execution order (all-zero columns are not
        scheduled when the network was planned with ``drop_empty_columns``).
    lane_images : list of dict
        Per lane, the layer's own memory images (addresses from 0), as one run would load them.
    bases : dict
        The job's bases (:func:`zeroskip.hw.layouts.resident_bases`): where the layer's region
        starts in every lane's memories.
    """
    weights: np.ndarray
    lane_columns: list
    lane_images: list
    bases: dict

    @property
    def k(self):
        return self.weights.shape[0]

    @property
    def n(self):
        return self.weights.shape[1]


@dataclass
class ResidentNetwork:
    """Every layer's weights laid out in the lanes' memories (:func:`plan_network`).

    Attributes
    ----------
    config : ArrayConfig
    layers : list of ResidentLayer
    lane_images : list of dict
        Per lane, the contents of each of its memories from address 0, every layer in place:
        what the host loads once (``zeroskip.sim.rtl.packing.weight_beats(config, network)``).
    needs : dict
        Per memory, the words per lane the network occupies (the end of its last region).
    """
    config: object
    layers: list
    lane_images: list
    needs: dict

    def program(self, layer, acts, mode=Mode.SKIP):
        """The runs of ``acts @ layers[layer].weights`` on the resident weights: their jobs
        carry the layer's bases and they load activations only.

        Raises
        ------
        ValueError
            ``acts`` is not an int8 matrix with the layer's K columns.
        """
        config = self.config
        mode = Mode(mode)
        resident = self.layers[layer]
        acts = as_int8_matrix(acts, "acts")
        if acts.shape[1] != resident.k:
            raise ValueError(f"acts has {acts.shape[1]} columns, layer {layer}'s K is "
                             f"{resident.k}")
        program = Program(config=config, mode=mode, shape=(acts.shape[0], resident.k,
                                                           resident.n))
        nothing = [{name: [] for name in memory_depths(config)} for _ in range(config.cols)]
        runs = m_tile_runs(config, acts, resident.weights, 0, resident.lane_columns, nothing,
                           column_costs(resident.weights, mode, config))
        for run in runs:
            run.bases = dict(resident.bases)
        program.runs = runs
        return program


def plan_network(weights, config, *, drop_empty_columns=True):
    """Lay out the weights of a network's GEMMs in ``config``'s lane memories, resident.

    Parameters
    ----------
    weights : sequence of 2-D int8 arrays
        ``W_l`` (``K_l × N_l``) of each layer, in order.
    config : ArrayConfig
        With ``resident=True``.
    drop_empty_columns : bool
        Do not schedule all-zero columns (as :func:`zeroskip.sim.compiler.compile_gemm` in skip
        mode; :func:`zeroskip.sim.compiler.assemble` fills them in). False keeps them in the
        lanes, where each costs a bubble token per M-tile.

    Returns
    -------
    ResidentNetwork

    Raises
    ------
    NetworkTooLarge
        A layer's K beyond ``max_k``, a layer with more columns in a lane than the job's column
        count or the result memory holds, or a memory the whole network overflows: the message
        names the resource, what the network needs and what the configuration has.
    ValueError
        ``config`` is not resident, no layers, a weight matrix that is not int8, or one that
        breaks the format (e.g. the N:M pattern).
    """
    if not config.resident:
        raise ValueError("plan_network needs a configuration with resident=True")
    weights = [as_int8_matrix(w, f"weights[{i}]") for i, w in enumerate(weights)]
    if not weights:
        raise ValueError("a network needs at least one layer")
    fmt = formats.module(config.fmt)
    depths = memory_depths(config)
    ends = {base: 0 for base, _ in (REGIONS[name] for name in depths)}
    layers = []
    images = [{name: [] for name in depths} for _ in range(config.cols)]
    for index, w in enumerate(weights):
        _check_layer(config, index, w)
        fmt.check(w, config)
        lane_columns = _lane_columns(config, w, drop_empty_columns)
        _check_columns(config, index, w, lane_columns)
        lane_images = [fmt.lane_image([w[:, n] for n in cols], w.shape[0], config)
                       for cols in lane_columns]
        bases = dict(ends)
        for name in depths:
            base_name = REGIONS[name][0]
            lengths = [len(image[name]) for image in lane_images]
            ends[base_name] = max(ends[base_name], bases[base_name] + max(lengths))
            for lane, image in enumerate(lane_images):
                words = image[name]
                if name == "pointers":
                    words = [bases["entry_base"] + pointer for pointer in words]
                _place(images[lane], name, bases[base_name], words)
        layers.append(ResidentLayer(weights=w, lane_columns=lane_columns,
                                    lane_images=lane_images, bases=bases))
    needs = {name: max(len(image[name]) for image in images) for name in depths}
    for name, depth in depths.items():
        if needs[name] > depth:
            raise NetworkTooLarge(
                f"{REGIONS[name][1]}: the network needs {needs[name]:,} words in every lane "
                f"({len(weights)} layers, each at the same address in every lane), the "
                f"configuration has {depth:,}")
    _fill_gaps(config, images)
    return ResidentNetwork(config=config, layers=layers, lane_images=images, needs=needs)


def _check_layer(config, index, weights):
    k = weights.shape[0]
    if k > config.max_k:
        raise NetworkTooLarge(f"max_k: layer {index} needs K = {k:,} (a resident layer is one "
                              f"K-chunk), the configuration has max_k {config.max_k:,}")


def _lane_columns(config, weights, drop_empty_columns):
    """The layer's columns per lane, balanced as a skip-mode run of it would be."""
    columns = np.arange(weights.shape[1])
    if drop_empty_columns:
        columns = columns[np.count_nonzero(weights, axis=0) > 0]
    costs = column_costs(weights, Mode.SKIP, config)
    lanes = assign_columns(costs[columns], config.cols)
    return [[int(columns[i]) for i in lane] for lane in lanes]


def _check_columns(config, index, weights, lane_columns):
    """A layer's busiest lane against the job's column count and the result memory (one
    M-tile of it per run at least)."""
    most = max(len(cols) for cols in lane_columns)
    if most > config.pointer_depth - 1:
        raise NetworkTooLarge(
            f"columns per lane: layer {index} needs {most:,} columns in a lane, the "
            f"configuration has {config.pointer_depth - 1:,} (pointer_depth - 1)")
    if most > config.out_depth:
        raise NetworkTooLarge(
            f"result memory (out_depth): layer {index} needs {most:,} results per PE for one "
            f"M-tile, the configuration has {config.out_depth:,}")
    if config.column_results and weights.shape[0] < config.rows and most > 1:
        raise NetworkTooLarge(
            f"column results: layer {index} needs {most:,} columns in a lane with K = "
            f"{weights.shape[0]} below the {config.rows} rows (its columns cannot be padded "
            f"apart), the configuration closes 1 per run")


def _place(image, name, base, words):
    """Write ``words`` into ``image[name]`` from address ``base`` (None marks a gap)."""
    target = image[name]
    if len(target) < base:
        target += [None] * (base - len(target))
    target += words


def _fill_gaps(config, images):
    """Words no layer uses in a lane (its regions are shorter than the longest lane's):
    zeros, which no run reads (each lane's readers stay within its own columns)."""
    from zeroskip.hw.decoders import decoder_class
    from amaranth.lib import data
    for name, (shape, _) in decoder_class(config).memories(config).items():
        zero = {} if isinstance(shape, data.Layout) else 0
        for image in images:
            image[name] = [zero if word is None else word for word in image[name]]
