"""The host link: a framed, checksummed command protocol over a byte stream (the board's UART,
or an SoC bus's AXI4-Stream) in front of the accelerator.

:mod:`~zeroskip.hw.link.protocol`
    the wire format, commands, replies, CRC and payload layouts (shared with the host)
:mod:`~zeroskip.hw.link.device`
    what the link drives: the accelerator or the network engine (targets, RUN, READ)
:mod:`~zeroskip.hw.link.host_link`
    :class:`~zeroskip.hw.link.host_link.HostLink`, the protocol engine and its accelerator
:mod:`~zeroskip.hw.link.frames`
    the link's registers and buffers: frame buffer, request, word, reply
:mod:`~zeroskip.hw.link.reset`
    the accelerator's registered reset
"""
