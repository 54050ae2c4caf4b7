"""The host compiler: tiles a GEMM onto the array and lays out the on-chip memories.

Weights are static, so the balancing that a dynamic scheduler would do in hardware is done here,
offline: every output column of W becomes a job whose cost is the number of tokens its decoder
lane emits (its nonzeros in skip mode, K in dense and gate modes), and the jobs are spread over the
``cols`` lanes by longest-processing-time-first list scheduling. Each lane then runs its own
columns back to back for every M-tile, with no barrier between tiles, so a run costs the load of
its busiest lane plus a fixed fill/drain.

A GEMM larger than the memories of one run is split into several runs (column groups first, then
M-tiles); their results are stitched together by :func:`assemble`. A K beyond what the
accumulators hold (``config.max_k``) is split into K-chunks, each a GEMM of its own on the
array; :func:`assemble` adds their partial sums exactly, in 64-bit integers on the host, up to
:data:`MAX_K` (where an int32 result could first overflow).
"""

import heapq
from dataclasses import dataclass, field

import numpy as np

from zeroskip.config import MAX_K, Mode
from zeroskip.sim import formats, model
from zeroskip.sim.loaders import as_int8_matrix

__all__ = ["Run", "Program", "GemmTooLarge", "MAX_K", "k_chunks", "compile_gemm",
           "assign_columns", "column_costs", "m_tile_runs", "assemble", "lane_tokens"]


class GemmTooLarge(ValueError):
    """The GEMM cannot run on this configuration at all (K beyond :data:`MAX_K`, or a column
    that does not fit the lane memories)."""


@dataclass
class Run:
    """One start-to-done run of the accelerator, with its memory images.

    Attributes
    ----------
    m_start : int
        First row of A (and C) of this run.
    k_start, k : int
        The K-chunk of this run: rows ``k_start .. k_start + k - 1`` of W (all of K unless K
        exceeds the accumulators' ``config.max_k``).
    m_tiles, rows_last : int
        M-tiles in the run, valid rows in its last tile.
    lane_columns : list of list of int
        Output columns (indices into W's columns) of each lane, in execution order.
    acts : ndarray of int8, (rows, m_tiles * K)
        ``acts[r, t * K + k]`` = A[m_start + t * rows + r, k], zero for padding rows.
    lane_images : list of dict
        Per lane, the contents of each decoder memory (by name; see the format module).
    lane_weights : list of ndarray
        Per lane, its columns of W (K × columns), for reference models.
    tokens : list of int
        Cycles each lane's decoder spends in this run (tokens, format stalls and prefetch
        refills).
    bases : dict
        With :attr:`~zeroskip.config.ArrayConfig.resident`: the job's bases, where this run's
        layer lies in the lane memories (:mod:`zeroskip.sim.resident`); else empty.
    """
    m_start: int
    k_start: int
    k: int
    m_tiles: int
    rows_last: int
    lane_columns: list
    acts: np.ndarray
    lane_images: list
    lane_weights: list
    tokens: list
    bases: dict = field(default_factory=dict)

    def job(self, mode):
        """The job register contents for this run (see :func:`zeroskip.hw.layouts.job_layout`)."""
        return {
            "mode": int(mode),
            "m_tiles": self.m_tiles,
            "k": self.k,
            "rows_last": self.rows_last,
            "lane_columns": [len(cols) for cols in self.lane_columns],
            **self.bases,
        }


@dataclass
class Program:
    """Everything the accelerator needs to compute one GEMM, and how to read it back."""
    config: object
    mode: Mode
    shape: tuple  # (M, K, N)
    runs: list = field(default_factory=list)

    @property
    def k_chunks(self):
        """How many K-chunks the GEMM was split into (1 unless K exceeds ``config.max_k``)."""
        return len({run.k_start for run in self.runs}) or 1

    @property
    def predicted_cycles(self):
        """The analytical model's cycle count, summed over runs."""
        return sum(model.run_cycles(self.config, run.tokens) for run in self.runs)

    @property
    def weight_bits_loaded(self):
        """Bits written to the decoder lanes' memories over all runs: every word of every lane
        image at its memory's width (a run reloads its column group's images)."""
        from zeroskip.hw.decoders import decoder_class
        from zeroskip.hw.layouts import shape_width
        memories = decoder_class(self.config).memories(self.config)
        return sum(len(image[name]) * shape_width(shape) for run in self.runs
                   for image in run.lane_images for name, (shape, _) in memories.items())


def column_costs(weights, mode, config):
    """Cycles a decoder lane spends on each output column of W (from the lane model), including
    the move to the next column (``config.column_advance_cycles``)."""
    k, n = weights.shape
    if Mode(mode) != Mode.SKIP:
        return np.full(n, k + config.column_advance_cycles, dtype=np.int64)
    fmt = formats.module(config.fmt)
    return np.array([formats.column_run(fmt.Cursor(weights[:, j], k, config), k, False)[1]
                     for j in range(n)], dtype=np.int64) + config.column_advance_cycles


def assign_columns(costs, lanes):
    """Longest-processing-time-first list scheduling of columns onto ``lanes``.

    Returns, per lane, its column indices in increasing order.
    """
    order = sorted(range(len(costs)), key=lambda n: (-int(costs[n]), n))
    heap = [(0, lane) for lane in range(lanes)]
    assigned = [[] for _ in range(lanes)]
    for n in order:
        load, lane = heapq.heappop(heap)
        assigned[lane].append(n)
        heapq.heappush(heap, (load + int(costs[n]), lane))
    return [sorted(cols) for cols in assigned]


def memory_depths(config):
    """Depth of each decoder memory of ``config``'s lanes."""
    from zeroskip.hw.decoders import decoder_class
    return {name: depth for name, (_, depth) in decoder_class(config).memories(config).items()}


def _lane_images(config, weights, lane_columns):
    k = weights.shape[0]
    if config.arch == "dense":
        # the dense baseline's column memories: the lane's columns of W, uncompressed
        return [{"weights": [int(v) for n in cols for v in weights[:, n]]}
                for cols in lane_columns]
    fmt = formats.module(config.fmt)
    return [fmt.lane_image([weights[:, n] for n in cols], k, config) for cols in lane_columns]


def _column_groups(config, weights, costs, columns):
    """Split ``columns`` until each group's lane images fit the lane memories."""
    lanes = assign_columns(costs[columns], config.cols)
    lanes = [[int(columns[i]) for i in lane] for lane in lanes]
    images = _lane_images(config, weights, lanes)
    depths = memory_depths(config)
    # a lane's columns need a pointer each (plus one) and, for one M-tile, a result word each
    most = min(config.pointer_depth - 1, config.out_depth, _most_closes(config, weights))
    fits = all(len(cols) <= most for cols in lanes) \
        and all(len(image[name]) <= depth for image in images for name, depth in depths.items())
    if fits:
        return [(lanes, images)]
    if len(columns) == 1:
        raise GemmTooLarge(f"one column of W does not fit the lane memories of this "
                           f"configuration ({depths})")
    half = len(columns) // 2
    return (_column_groups(config, weights, costs, columns[:half]) +
            _column_groups(config, weights, costs, columns[half:]))


def _most_closes(config, weights):
    """Outputs (columns × M-tiles) a lane may close in one run. With ``column_results``, a
    column needs ``rows`` tokens so that its PEs' closes do not meet the next column's; a K
    below ``rows`` cannot pad a column to that, so each run closes one column of one tile."""
    short = config.column_results and weights.shape[0] < config.rows
    return 1 if short else config.out_depth


def compile_gemm(acts, weights, config, mode=Mode.SKIP, *, drop_empty_columns=True):
    """Compile ``acts @ weights`` for ``config`` in ``mode``.

    In skip mode an all-zero column of W (of a K-chunk) is known offline to give an all-zero
    column of C, so by default it is not scheduled at all (the decoder could handle it, at one
    bubble token per column and M-tile) and :func:`assemble` fills it in.

    Raises
    ------
    GemmTooLarge
        If K exceeds :data:`MAX_K`.
    ValueError
        If an operand is not a non-empty 2-D integer matrix with int8 values (naming it; values
        are never wrapped), or W does not fit the format (e.g. breaks the N:M pattern of an
        ``nm`` configuration).
    """
    mode = Mode(mode)
    if config.arch == "dense" and mode != Mode.DENSE:
        raise ValueError(f"the dense architecture executes every MAC: it has no "
                         f"{mode.name.lower()} mode")
    acts = as_int8_matrix(acts, "acts")
    weights = as_int8_matrix(weights, "weights")
    m, k = acts.shape
    k_w, n = weights.shape
    if k != k_w:
        raise ValueError(f"inner dimensions differ: A is {m}x{k}, W is {k_w}x{n}")
    if k > MAX_K:
        raise GemmTooLarge(f"K = {k} exceeds the accepted limit of {MAX_K} (beyond it an "
                           f"int32 result of int8 products could overflow)")
    formats.module(config.fmt).check(weights, config)
    program = Program(config=config, mode=mode, shape=(m, k, n))
    # an N:M chunk must start on a group boundary, so that its groups are W's groups
    align = config.nm_m if config.fmt == "nm" else 1
    for k_start, k_stop in k_chunks(k, config.max_k, align):
        _compile_chunk(program, acts[:, k_start:k_stop], weights[k_start:k_stop], k_start,
                       drop_empty_columns)
    return program


def k_chunks(k, max_k, align=1):
    """Split ``range(k)`` into the fewest chunks of at most ``max_k`` rows, as equal as
    possible, each starting at a multiple of ``align``: a list of ``(start, stop)``."""
    limit = max_k // align * align
    if limit == 0:
        # an N:M group longer than max_k (e.g. 5:9 with max_k 8): no chunk can start past the
        # first group, so K must fit one
        if k <= max_k:
            return [(0, k)]
        raise GemmTooLarge(f"K = {k} exceeds max_k {max_k}, and K-chunks of an N:M pattern "
                           f"must be whole groups of {align} rows")
    count = -(-k // limit)
    per_chunk = -(-k // count)
    size = -(-per_chunk // align) * align
    return [(start, min(start + size, k)) for start in range(0, k, size)]


def _compile_chunk(program, acts, weights, k_start, drop_empty_columns):
    """Append the runs of ``acts @ weights`` (one K-chunk, K <= ``config.max_k``)."""
    config, mode = program.config, program.mode
    n = weights.shape[1]
    costs = column_costs(weights, mode, config)
    nnz = np.count_nonzero(weights, axis=0)
    columns = np.arange(n)
    if mode == Mode.SKIP and drop_empty_columns:
        columns = columns[nnz > 0]
    for lane_columns, images in _column_groups(config, weights, costs, columns):
        program.runs += m_tile_runs(config, acts, weights, k_start, lane_columns, images, costs)


def m_tile_runs(config, acts, weights, k_start, lane_columns, images, costs):
    """The runs of one column group of one K-chunk (K <= ``config.max_k``): ``acts`` (M × K)
    in as many M-tiles per run as the activation and result memories hold.

    Parameters
    ----------
    lane_columns : list of list of int
        Per lane, its columns of ``weights`` (K × N), in execution order.
    images : list of dict
        Per lane, what a run loads into its memories (:attr:`Run.lane_images`).
    costs : ndarray
        Per column of ``weights``, its lane cycles in the runs' mode (:func:`column_costs`).

    Raises
    ------
    GemmTooLarge
        If the result memory cannot hold one M-tile of the lanes' columns.
    """
    m, k = acts.shape
    rows = config.rows
    total_tiles = -(-m // rows)
    most_columns = max(len(cols) for cols in lane_columns)
    tiles_per_run = min(config.act_depth // k, config.out_depth // max(most_columns, 1),
                        _most_closes(config, weights))
    if tiles_per_run < 1:
        raise GemmTooLarge("the output memory cannot hold one M-tile of this schedule")
    lane_cost = [int(costs[cols].sum()) for cols in lane_columns]
    runs = []
    for tile0 in range(0, total_tiles, tiles_per_run):
        tiles = min(tiles_per_run, total_tiles - tile0)
        m_start = tile0 * rows
        m_rows = min(tiles * rows, m - m_start)
        image = np.zeros((tiles * rows, k), dtype=np.int8)
        image[:m_rows] = acts[m_start:m_start + m_rows]
        # row r of tile t lives in PE row r at address t*K + k
        image = image.reshape(tiles, rows, k).transpose(1, 0, 2).reshape(rows, tiles * k)
        runs.append(Run(
            m_start=m_start, k_start=k_start, k=k, m_tiles=tiles,
            rows_last=m_rows - (tiles - 1) * rows,
            lane_columns=lane_columns, acts=np.ascontiguousarray(image),
            lane_images=images, lane_weights=[weights[:, cols] for cols in lane_columns],
            tokens=_lane_cycles(config, k, tiles, lane_cost, lane_columns)))
    return runs


def _lane_cycles(config, k, tiles, lane_cost, lane_columns):
    """Cycles each lane is busy in a run of ``tiles`` M-tiles (:attr:`Run.tokens`)."""
    if config.arch == "dense":
        # the dense array moves in lock step: every column takes a step per (tile, slot) of
        # the lane with the most columns
        from zeroskip.hw.dense import dense_step_cycles
        most = max(len(cols) for cols in lane_columns)
        return [tiles * most * dense_step_cycles(config, k)] * len(lane_columns)
    # (the lane's last column needs no advance: the lane stops)
    return [tiles * (cost + config.lane_refill_cycles) - config.column_advance_cycles
            if cols else 0 for cost, cols in zip(lane_cost, lane_columns)]


def assemble(program, results):
    """Stitch the per-run result memories into C.

    ``results[i][c]`` is an int array ``(rows, jobs)`` read from PE column ``c`` of run ``i``:
    job ``t * len(lane_columns[c]) + j`` holds output column ``lane_columns[c][j]`` of tile ``t``.
    """
    m, _, n = program.shape
    rows = program.config.rows
    # K-chunks add up: exact in 64 bits, and within int32 for any K <= MAX_K
    out = np.zeros((m, n), dtype=np.int64)
    for run, run_results in zip(program.runs, results):
        for cols, lane_result in zip(run.lane_columns, run_results):
            if not cols:
                continue
            lane_result = np.asarray(lane_result, dtype=np.int64).reshape(
                rows, run.m_tiles, len(cols))
            # (row r, tile t, column j) -> C[m_start + t*rows + r, cols[j]]
            block = lane_result.transpose(1, 0, 2).reshape(run.m_tiles * rows, len(cols))
            valid = min(run.m_tiles * rows, m - run.m_start)
            out[run.m_start:run.m_start + valid, cols] += block[:valid]
    return out.astype(np.int32)


def lane_tokens(program, run, lane):
    """The token stream a decoder lane must emit for ``run`` (the decoders' specification).

    Returns a list of dicts with the members of :func:`zeroskip.hw.layouts.token_layout`.
    """
    config, mode = program.config, program.mode
    k = run.k
    fmt = formats.module(config.fmt)
    weights = run.lane_weights[lane]
    tokens = []
    out_addr = 0
    for tile in range(run.m_tiles):
        tile_rows = run.rows_last if tile == run.m_tiles - 1 else config.rows
        for j in range(weights.shape[1]):
            cursor = fmt.Cursor(weights[:, j], k, config)
            column, _ = formats.column_run(cursor, k, expand=mode != Mode.SKIP)
            for row, weight, first, last, bubble in column:
                tokens.append({"act_addr": tile * k + row, "weight": int(weight),
                               "first": int(first), "last": int(last), "bubble": int(bubble),
                               "out_addr": out_addr, "rows": tile_rows})
            out_addr += 1
    return tokens
