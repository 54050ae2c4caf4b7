"""Block-RAM read ports that Yosys maps without collision logic."""

from amaranth.hdl import Signal

__all__ = ["read_port"]


class _ReadPort:
    def __init__(self, addr, data):
        self.addr, self.data = addr, data


def read_port(m, memory, *, name=None):
    """A synchronous read port of ``memory`` (``data`` is the word at ``addr`` one cycle later;
    a word written in the same cycle reads as its old value in simulation, and no memory
    here is read where it is being written).

    Built as an asynchronous port followed by a register, not as Amaranth's synchronous port.
    Yosys' ``-no-rw-check`` (read/write collisions are don't-care) is applied where
    ``memory_dff`` merges a register into a read port; a port that is synchronous already
    keeps its defined old-data-on-collision behaviour, and ``memory_libmap`` then emulates it
    on every block RAM with a write-address compare and a bypass multiplexer in the read
    data path (measured on the ECP5: a LUT level and a route on every block-RAM read).
    """
    port = memory.read_port(domain="comb")
    data = Signal(memory.shape, name=f"{name or 'memory'}_data", reset_less=True)
    m.d.sync += data.eq(port.data)
    return _ReadPort(port.addr, data)
