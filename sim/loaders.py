"""Loading and validating user operands. Anything that is not what it should be raises
:class:`BadInput` with one line naming the problem."""

import math
import os

import numpy as np
import numpy.lib.format as npformat

from zeroskip.config import INT8_MAX, INT8_MIN, MAX_K

__all__ = ["BadInput", "load_int8_matrix", "check_int8_matrix", "as_int8_matrix",
           "check_gemm_operands"]


class BadInput(ValueError):
    """User input that the tool rejects (exit status 2)."""


def check_int8_matrix(array, name):
    """Return ``array`` as an int8 matrix, or raise :class:`BadInput` saying what is wrong."""
    if not isinstance(array, np.ndarray):
        raise BadInput(f"{name}: expected a NumPy array, got {type(array).__name__}")
    if array.dtype.kind not in "iu":
        raise BadInput(f"{name}: expected an integer array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise BadInput(f"{name}: expected a 2-D matrix, got {array.ndim}-D with shape "
                       f"{array.shape}")
    if 0 in array.shape:
        raise BadInput(f"{name}: expected a non-empty matrix, got shape {array.shape}")
    lo, hi = int(array.min()), int(array.max())
    if lo < INT8_MIN or hi > INT8_MAX:
        bad = lo if lo < INT8_MIN else hi
        where = np.argwhere(array == bad)[0]
        raise BadInput(f"{name}: value {bad} at {tuple(int(i) for i in where)} is outside "
                       f"int8 [{INT8_MIN}, {INT8_MAX}]")
    return array.astype(np.int8)


def as_int8_matrix(array, name):
    """Library entry points: ``array`` (any array-like) as an int8 matrix, or :class:`BadInput`
    (a ``ValueError``) naming ``name``; out-of-range values are rejected, never wrapped."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{name}: not an array ({exc})") from None
    return check_int8_matrix(array, name)


def load_int8_matrix(path, name):
    """Load a ``.npy`` file holding a 2-D integer matrix with int8 values.

    Anything else raises :class:`BadInput` with one line, not nested, saying what the file is
    and that a ``.npy`` int8 matrix (``numpy.save``) was expected."""
    try:
        with open(path, "rb") as f:
            array = _read_npy(f, path, name)
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{name}: {path} is a directory; expected a .npy file") from None
    except PermissionError:
        raise BadInput(f"{name}: cannot read {path}: permission denied") from None
    except OSError as exc:
        raise BadInput(f"{name}: cannot read {path} ({exc.strerror or type(exc).__name__})") \
            from None
    return check_int8_matrix(array, name)


def _read_npy(f, path, name):
    """The array of the open ``.npy`` file ``f``; BadInput (one line) for anything else."""
    expected = "expected a .npy file written by numpy.save"
    magic = f.read(6)
    if magic[:4] == b"PK\x03\x04":
        raise BadInput(f"{name}: {path} is an .npz archive; expected a single .npy matrix")
    if magic != b"\x93NUMPY":
        found = "an empty file" if not magic else "a file without a NumPy header"
        raise BadInput(f"{name}: {path} is {found}; {expected}")
    f.seek(0)
    try:
        version = npformat.read_magic(f)
        read_header = npformat.read_array_header_1_0 if version == (1, 0) else \
            npformat.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, EOFError, OverflowError, SyntaxError, TypeError):
        # numpy's own words here quote the header's bytes: not worth a user's reading
        raise BadInput(f"{name}: {path} has a damaged NumPy header; {expected}") from None
    if dtype.hasobject:
        raise BadInput(f"{name}: {path} holds Python objects (dtype {dtype}); expected an "
                       f"integer matrix")
    needed = f.tell() + math.prod(shape) * dtype.itemsize
    size = os.fstat(f.fileno()).st_size
    if size < needed:
        raise BadInput(f"{name}: {path} is truncated: {size} bytes where its header (shape "
                       f"{tuple(shape)}, {dtype}) needs {needed}")
    f.seek(0)
    try:
        return np.load(f, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # not seen: the checks above come first
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BadInput(f"{name}: {path} cannot be read as a .npy file: {detail}") from None


def check_gemm_operands(acts, weights):
    """Check that ``acts @ weights`` is a GEMM the tool accepts (any configuration: a K beyond
    a configuration's accumulators is split into K-chunks)."""
    m, k = acts.shape
    k_w, n = weights.shape
    if k != k_w:
        raise BadInput(f"inner dimensions differ: activations are {m}x{k} but weights are "
                       f"{k_w}x{n}")
    if k > MAX_K:
        raise BadInput(f"K = {k} exceeds the accepted limit of {MAX_K} (beyond it an int32 "
                       f"result of int8 products could overflow)")
