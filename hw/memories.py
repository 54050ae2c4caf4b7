"""Block-RAM read ports that Yosys maps without collision logic."""

from amaranth.hdl import Cat, Signal

from zeroskip.config import bits_for

__all__ = ["read_port", "Banked"]


class Banked:
    """A memory of two banks of ``depth`` words (:attr:`ArrayConfig.double_buffer`): bank 1
    from ``1 << bits_for(depth)``. :func:`read_port` gives its readers a port addressed within
    the bank ``bank`` selects, so a reader written for one bank needs no change."""

    def __init__(self, memory, depth, bank):
        self.memory, self.depth, self.bank = memory, depth, bank
        self.shape = memory.shape

    @property
    def read_ports(self):
        return self.memory.read_ports


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
    if isinstance(memory, Banked):
        inner = read_port(m, memory.memory, name=name)
        addr = Signal(bits_for(memory.depth), name=f"{name or 'memory'}_bank_addr")
        m.d.comb += inner.addr.eq(Cat(addr, memory.bank))
        return _ReadPort(addr, inner.data)
    port = memory.read_port(domain="comb")
    data = Signal(memory.shape, name=f"{name or 'memory'}_data", reset_less=True)
    m.d.sync += data.eq(port.data)
    return _ReadPort(port.addr, data)
