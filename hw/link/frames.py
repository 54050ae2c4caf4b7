"""The host link's registers and buffers (:class:`zeroskip.hw.link.host_link.HostLink` is the FSM
that drives them): the byte counts of everything the link moves, the request frame buffer in
block RAM, the request being received, the word assembled from it, and the reply with its byte
select.

Each class creates its signals, with their names, when constructed: the HostLink constructs them
in a fixed order, which with those names keeps the generated Verilog byte-identical.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal
from amaranth.lib import data, memory

from zeroskip.hw.link.protocol import CRC_INIT, Reply, byte_count, info_layout
from zeroskip.hw.memories import read_port

__all__ = ["Sizes", "FrameBuffer", "Frame", "Word", "ReplyFrame"]


class Sizes:
    """The byte counts of everything the link moves for its device (a
    :class:`~zeroskip.hw.link.device.LinkDevice`), and the constant INFO payload and the run
    report it replies with (plain numbers and values, no signals)."""

    def __init__(self, device, info_fields, accel, link_counts=()):
        self.targets = device.targets
        self.word_bytes = [byte_count(bits + mask) for _, bits, mask, _ in self.targets]
        self.job_bytes = byte_count(device.job_bits)
        self.result_bytes = byte_count(device.read_bits)
        self.max_read = min(device.read_depth, 0xFFFF // self.result_bytes)
        self.info = Const(info_layout().const(info_fields).as_value().value, info_layout().size)
        # the device's counters and status, and the link's byte counts where it reports them
        self.report = Cat(accel.counters.as_value(), accel.status.as_value(), *link_counts)
        self.reply_bytes = {"info": byte_count(len(self.info)),
                            "report": byte_count(len(self.report))}
        # the longest word: a memory word, the job, a result word or a whole INFO/RUN reply
        self.longest = max(self.word_bytes + [self.job_bytes, self.result_bytes,
                                              *self.reply_bytes.values()])


class FrameBuffer:
    """The frame buffer: one request payload in block RAM, with its read data registered."""

    def __init__(self, m, depth):
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=depth, init=[])
        # the port's signals take their names from this variable (write_port has no name=)
        buffer_wr = buffer.write_port()
        self.write = buffer_wr
        self.read = read_port(m, buffer, name="buffer")
        # the frame buffer's read data, registered next to the block RAM (its clock-to-out is
        # 5.8 ns, and `word` sits by the memories it writes, across the chip)
        self.byte = Signal(8, name="buffer_byte")
        m.d.sync += self.byte.eq(self.read.data)


class Frame:
    """The request being received, and the registers the rest of the link shares with it:
    `count` (payload bytes received, then consumed, then sent), `crc` (one network for both
    directions) and `status` (of the reply)."""

    def __init__(self, byte, sizes, idle_timeout):
        self.byte = byte
        self.command = Signal(8, name="command")
        self.length = Signal(16, name="length")
        self.length_last = Signal(16, name="length_last")  # length - 1: no adder before compares
        self.count = Signal(16, name="count")
        # the first payload bytes (target, addr, ...)
        self.header = Signal(data.ArrayLayout(8, 5), name="header")
        self.crc = Signal(16, init=CRC_INIT, name="crc")
        self.idle = Signal(range(idle_timeout + 1), name="idle")
        self.status = Signal(Reply, name="status")

        self.target = self.header[0]
        self.address = Cat(self.header[1], self.header[2])
        self.read_count = Cat(self.header[3], self.header[4])
        self.target_last = Array(Const(n - 1, 8) for n in sizes.word_bytes)[self.target]
        # words of a WRITE, counted as they arrive so the range is checked before anything
        # is written
        self.phase = Signal(8, name="phase")
        self.words = Signal(16, name="words")
        self.crc_next = None     # `crc` updated with the byte received or sent (set later)
        self.receiving = None    # a frame is coming in: the idle counter runs (set later)

    def receive(self, m, next_state):
        """Takes the byte on `rx` into the CRC and goes to ``next_state``."""
        m.d.sync += self.crc.eq(self.crc_next)
        m.next = next_state

    def reject(self, m, code):
        """Gives up on the frame: DISCARD the rest, then reply ``code``."""
        m.d.sync += [self.status.eq(code), self.idle.eq(0)]
        m.next = "DISCARD"


class Word:
    """A word assembled from the buffer's bytes: a memory word of WRITE, or the job of RUN."""

    def __init__(self, sizes):
        self.word = Signal(8 * max(sizes.word_bytes + [sizes.job_bytes]), name="word")
        self.word_byte = Signal(range(sizes.longest + 1), name="word_byte")
        self.write_addr = Signal(16, name="write_addr")


class ReplyFrame:
    """The reply: `words` words of `word_last + 1` bytes, from one of the sources laid out byte
    by byte: INFO's constant, the run report, the result port. A byte multiplexer, where
    `word_select` on a wide vector would build a barrel shifter (over a thousand iCE40 LUTs)."""

    def __init__(self, columns, sizes, status):
        self.status = status
        self.length = Signal(16, name="reply_length")
        self.last = Signal(16, name="reply_last")                  # length - 1
        self.word_last = Signal(range(sizes.longest + 1), name="reply_word_last")
        self.words = Signal(16, name="reply_words")
        self.read_column = Signal(range(columns), name="read_column")

    def lay_out(self, sources):
        """Lays ``sources`` (name → value) out byte by byte, and builds the byte select in two
        registered steps: a group of 8 bytes, then the byte in it."""
        source_bytes, self.source_base = [], {}
        for name, value in sources.items():
            self.source_base[name] = len(source_bytes)
            source_bytes += [value[i:i + 8] for i in range(0, len(value), 8)]
        # of the next payload byte
        self.byte_index = Signal(range(len(source_bytes) + 1), name="byte_index")
        # of the current word's first byte
        self.word_base = Signal.like(self.byte_index, name="word_base")
        padded = [Cat(b, Const(0, 8 - len(b))) if len(b) < 8 else b for b in source_bytes]
        groups = [Cat(*padded[i:i + 8]) for i in range(0, len(padded), 8)]
        self.group = Signal(64, name="group")
        self.out_group = _select(groups, self.byte_index[3:])
        self.out_byte = _select([self.group[i:i + 8] for i in range(0, 64, 8)],
                                self.byte_index[:3])
        self.payload_byte = Signal(8, name="payload_byte")
        self.tx_byte = Signal(8, name="tx_byte")
        self.sending = Signal(name="sending")

    def start(self, m, code, length, word_bytes, words, source="info"):
        """Loads the reply registers and goes to REPLY_SYNC."""
        m.d.sync += [
            self.status.eq(code), self.length.eq(length), self.last.eq(length - 1),
            self.word_last.eq(word_bytes - 1),
            self.words.eq(words), self.byte_index.eq(self.source_base[source]),
            self.word_base.eq(self.source_base[source]),
        ]
        m.next = "REPLY_SYNC"


def _select(values, index):
    """``values[index]`` as a tree of 2:1 multiplexers on the index bits. (As an ``Array``
    it becomes an ``always @*`` block that Icarus never evaluates while the index keeps its
    initial value.)"""
    values = list(values)
    for bit in range(len(index)):
        values = [Mux(index[bit], values[i + 1], values[i]) if i + 1 < len(values)
                  else values[i] for i in range(0, len(values), 2)]
    return values[0]
