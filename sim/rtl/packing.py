"""Operands and results as the accelerator's ports move them: the write beats of a run's
activations and decoder memories, the double-buffered banks' base addresses, and the result
port's words back to arrays. Shared by the simulator harness (:mod:`zeroskip.sim.rtl.runner`)
and the board runtime (:mod:`zeroskip.platforms.runtime`)."""

import numpy as np

__all__ = ["act_beats", "bank_bases", "weight_beats", "result_words_to_array"]


def act_beats(run, base=0):
    """Activation write beats of a run: at each address (from ``base``), one int8 per PE
    row."""
    acts = run.acts.astype(np.uint8)
    return [(base + addr, int.from_bytes(acts[:, addr].tobytes(), "little"))
            for addr in range(acts.shape[1])]


def bank_bases(config, bank):
    """Where bank ``bank`` starts in each memory (:attr:`ArrayConfig.double_buffer`):
    ``{"act": ..., <decoder memory>: ..., "results": ...}``; all 0 for bank 0."""
    from zeroskip.hw.decoders import decoder_class
    bases = {"act": config.bank_offset(config.act_depth),
             **{name: config.bank_offset(depth)
                for name, (_, depth) in decoder_class(config).memories(config).items()},
             "results": config.bank_offset(config.result_depth)}
    return {name: base * bank for name, base in bases.items()}


def _lane_beats(words, width):
    """Masked beats writing per-lane word lists side by side (lane i at bits i*width)."""
    beats = []
    for addr in range(max((len(w) for w in words), default=0)):
        value = mask = 0
        for lane, lane_words in enumerate(words):
            if addr < len(lane_words):
                value |= int(lane_words[addr]) << (lane * width)
                mask |= 1 << lane
        beats.append((addr, value, mask))
    return beats


def weight_beats(config, run, bases=None):
    """Write beats of every decoder memory of a run, all lanes in parallel: ``{name: beats}``
    (addresses from ``bases[name]``, :func:`bank_bases`)."""
    from zeroskip.hw.decoders import decoder_class
    from zeroskip.hw.layouts import pack, shape_width
    beats = {}
    for name, (shape, _) in decoder_class(config).memories(config).items():
        words = [[pack(shape, value) for value in image[name]] for image in run.lane_images]
        base = bases[name] if bases else 0
        beats[name] = [(base + addr, *rest) for addr, *rest in
                       _lane_beats(words, shape_width(shape))]
    return beats


def result_words_to_array(config, words):
    """Result-port words of one PE column to an int32 array (rows, jobs): a word per job of
    every row's result, or (``config.column_results``) a word per row and job, job by job
    (:meth:`~zeroskip.config.ArrayConfig.result_words` of the jobs)."""
    from zeroskip.hw.layouts import result_read_signature, unpack
    layout = result_read_signature(config).members["data"].shape
    if not words:
        return np.zeros((config.rows, 0), np.int32)
    values = np.array([unpack(layout, w) for w in words], dtype=np.int32)
    if config.column_results:
        return values.reshape(-1, config.rows).T.copy()
    return values.T.copy()
