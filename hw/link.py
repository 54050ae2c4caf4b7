"""The host link: a framed, checksummed command protocol over a byte stream (the board's UART)
in front of the accelerator.

Request  ``5A cmd len_lo len_hi payload[len] crc_hi crc_lo``
Reply    ``A5 status len_lo len_hi payload[len] crc_hi crc_lo``

The CRC is CRC-16/CCITT (polynomial 0x1021, initial value 0xFFFF, Python's
``binascii.crc_hqx(data, 0xFFFF)``) over everything between the sync byte and the CRC.

A request is buffered whole and executed only once its CRC checks out, so a damaged frame
never writes anything. Every command is idempotent (writes of the same words, a run of the same
job, reads), so the host simply repeats a request whose reply is a rejection, is damaged, or
never comes. On any error the link drops bytes until the line has been idle for
``idle_timeout`` cycles and only then rejects the frame: the host's retry never collides with
the rest of a frame the link has given up on.

Commands (:class:`Command`) and their payloads:

INFO
    none → :func:`info_layout` (configuration digest, max payload, clock, idle timeout).
WRITE
    ``target addr_lo addr_hi word...`` → none. Writes consecutive words from ``addr`` into one
    of the memories of :func:`write_targets` (activations, then each decoder memory).
RUN
    the job (:func:`zeroskip.hw.layouts.job_layout`, little-endian) → the counters and lane
    status of the run (:func:`run_report_layout`), once the run is done.
READ
    ``column addr_lo addr_hi count_lo count_hi`` → ``count`` result words of PE column
    ``column`` from ``addr``, each ``rows`` little-endian int32.
RESET
    none → none. Resets the accelerator (not the link).
"""

import enum

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus
from zeroskip.hw.accelerator import Accelerator
from zeroskip.hw.decoders import decoder_class
from zeroskip.hw.layouts import counters_layout, job_layout, shape_width
from zeroskip.hw.memories import read_port

__all__ = ["REQUEST_SYNC", "REPLY_SYNC", "Command", "Reply", "HostLink", "write_targets",
           "info_layout", "run_report_layout", "byte_count", "crc16_step"]

REQUEST_SYNC = 0x5A
REPLY_SYNC = 0xA5
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


class Command(enum.IntEnum):
    INFO = 1
    WRITE = 2
    RUN = 3
    READ = 4
    RESET = 5


class Reply(enum.IntEnum):
    OK = 0
    BAD_CRC = 1     # the frame arrived damaged: nothing was executed
    BAD_FRAME = 2   # unknown command, bad target, length or address range: nothing executed
    TIMEOUT = 3     # the line went idle in the middle of a frame


def byte_count(bits):
    return -(-bits // 8)


def write_targets(config):
    """The memories WRITE can fill, in target order: ``[(name, data_bits, mask_bits, depth)]``.

    A word is ``data | mask << data_bits``, little-endian in ``byte_count`` bytes. Target 0 is
    the activations (one int8 per PE row); then one per decoder memory, with one slot of
    ``data`` and one ``mask`` bit per lane, exactly the accelerator's write ports.
    """
    targets = [("act", config.rows * config.act_width, 0, config.act_depth)]
    for name, (shape, depth) in decoder_class(config).memories(config).items():
        targets.append((name, config.cols * shape_width(shape), config.cols, depth))
    return targets


def info_layout():
    return data.StructLayout({
        "digest": 48,          # the first 6 bytes of ArrayConfig.digest()
        "max_payload": 16,
        "clock_hz": 32,
        "idle_timeout": 32,    # cycles
    })


def run_report_layout(config):
    return data.StructLayout({
        "counters": counters_layout(config),
        "status": data.ArrayLayout(DecodeStatus, config.cols),
    })


def crc16_step(crc, byte, m=None):
    """CRC-16/CCITT ``crc`` updated with ``byte``: on ints, or on Amaranth values given the
    module ``m`` (each bit step is its own signal; as one expression every step would copy
    the whole tree below it twice)."""
    crc = crc ^ (byte << 8)
    for _ in range(8):
        if isinstance(crc, int):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        else:
            step = Signal(16)
            m.d.comb += step.eq(Mux(crc[15], (crc << 1) ^ CRC_POLY, crc << 1)[:16])
            crc = step
    return crc


def _times_constant(value, constant):
    """``value * constant`` as shifts and adds, so iCE40 synthesis does not spend a DSP on it."""
    terms = [value << i for i in range(constant.bit_length()) if constant >> i & 1]
    return sum(terms[1:], terms[0])


def _select(values, index):
    """``values[index]`` as a tree of 2:1 multiplexers on the index bits. (As an ``Array``
    it becomes an ``always @*`` block that Icarus never evaluates while the index keeps its
    initial value.)"""
    values = list(values)
    for bit in range(len(index)):
        values = [Mux(index[bit], values[i + 1], values[i]) if i + 1 < len(values)
                  else values[i] for i in range(0, len(values), 2)]
    return values[0]


class HostLink(wiring.Component):
    """The protocol engine and the accelerator it drives.

    Parameters
    ----------
    config : ArrayConfig
    clock_hz : int
        Reported by INFO, so the host can turn cycles into seconds.
    max_payload : int
        Largest request payload in bytes (the frame buffer's depth).
    idle_timeout : int
        Cycles of silence that end a broken frame.

    Members
    -------
    rx : In(stream of bytes, always ready)
    tx : Out(stream of bytes)
    busy : Out(1)
        The accelerator is running.
    error : Out(1)
        The last reply was a rejection.
    """

    def __init__(self, config, *, clock_hz, max_payload=512, idle_timeout=1 << 16):
        self._config = config
        self._clock_hz = clock_hz
        self._max_payload = max_payload
        self._idle_timeout = idle_timeout
        if not 16 <= max_payload < 1 << 16:
            raise ValueError(f"max_payload must be 16..65535 bytes, not {max_payload}")
        # WRITE addresses are 16 bits, and a word must fit a frame
        for name, bits, mask, depth in write_targets(config):
            if depth > 1 << 16 or byte_count(bits + mask) + 3 > max_payload:
                raise ValueError(f"memory {name!r} cannot be written through a "
                                 f"{max_payload}-byte frame with 16-bit addresses")
        super().__init__({
            "rx": In(stream.Signature(8, always_ready=True)),
            "tx": Out(stream.Signature(8)),
            "busy": Out(1),
            "error": Out(1),
        })

    @property
    def config(self):
        return self._config

    def info(self):
        """The INFO reply's payload fields."""
        return {"digest": int.from_bytes(bytes.fromhex(self._config.digest()[:12]), "little"),
                "max_payload": self._max_payload, "clock_hz": self._clock_hz,
                "idle_timeout": self._idle_timeout}

    def elaborate(self, platform):
        config = self._config
        m = Module()

        accel_reset = Signal()
        accel = Accelerator(config)
        m.submodules.accelerator = ResetInserter(accel_reset)(accel)
        m.d.comb += self.busy.eq(accel.busy)

        targets = write_targets(config)
        write_ports = [accel.act_write] + [getattr(accel, f"{name}_write")
                                           for name in accel.memory_names]
        word_bytes = [byte_count(bits + mask) for _, bits, mask, _ in targets]
        job_bytes = byte_count(job_layout(config).size)
        result_bytes = byte_count(config.rows * config.acc_width)
        max_read = min(config.out_depth, 0xFFFF // result_bytes)
        info = Const(info_layout().const(self.info()).as_value().value, info_layout().size)
        report = Cat(accel.counters.as_value(), accel.status.as_value())
        reply_bytes = {"info": byte_count(len(info)), "report": byte_count(len(report))}

        # the frame buffer: one request payload
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=self._max_payload, init=[])
        buffer_wr = buffer.write_port()
        buffer_rd = read_port(m, buffer, name="buffer")
        # the frame buffer's read data, registered next to the block RAM (its clock-to-out is
        # 5.8 ns, and `word` sits by the memories it writes, across the chip)
        buffer_byte = Signal(8)
        m.d.sync += buffer_byte.eq(buffer_rd.data)

        byte = self.rx.payload
        command = Signal(8)
        length = Signal(16)
        length_last = Signal(16)                  # length - 1, so no adder precedes a compare
        count = Signal(16)                        # payload bytes received / consumed / sent
        header = Signal(data.ArrayLayout(8, 5))   # the first payload bytes (target, addr, ...)
        crc = Signal(16, init=CRC_INIT)
        idle = Signal(range(self._idle_timeout + 1))
        status = Signal(Reply)

        target = header[0]
        address = Cat(header[1], header[2])
        read_count = Cat(header[3], header[4])
        target_last = Array(Const(n - 1, 8) for n in word_bytes)[target]
        # words of a WRITE, counted as they arrive so the range is checked before anything
        # is written
        phase = Signal(8)
        words = Signal(16)

        word = Signal(8 * max(word_bytes + [job_bytes]))
        longest = max(word_bytes + [job_bytes, result_bytes, *reply_bytes.values()])
        word_byte = Signal(range(longest + 1))
        write_addr = Signal(16)

        # the reply: `reply_words` words of `reply_word_last + 1` bytes, from one of the sources
        # laid out byte by byte: INFO's constant, the run report, the result port. A byte
        # multiplexer, where `word_select` on a wide vector would build a barrel shifter (over
        # a thousand iCE40 LUTs).
        reply_length = Signal(16)
        reply_last = Signal(16)                   # reply_length - 1
        reply_word_last = Signal(range(longest + 1))
        reply_words = Signal(16)
        read_column = Signal(range(config.cols))
        # the job is the word a RUN loaded: nothing writes `word` while the accelerator runs
        m.d.comb += [accel.result_column.eq(read_column),
                     accel.job.eq(word[:job_layout(config).size])]
        result = accel.result_read.data.as_value()
        if config.pipelined:
            # registered: the result memories' read data, the column select and the first byte
            # select step do not fit one 100 MHz cycle together (REPLY_WAIT waits for it)
            result_word = Signal(len(result))
            m.d.sync += result_word.eq(result)
            result = result_word
        sources = {"info": info, "report": report, "result": result}
        source_bytes, source_base = [], {}
        for name, value in sources.items():
            source_base[name] = len(source_bytes)
            source_bytes += [value[i:i + 8] for i in range(0, len(value), 8)]
        byte_index = Signal(range(len(source_bytes) + 1))  # of the next payload byte
        word_base = Signal.like(byte_index)                # of the current word's first byte
        # the byte select in two registered steps: a group of 8 bytes, then the byte in it
        padded = [Cat(b, Const(0, 8 - len(b))) if len(b) < 8 else b for b in source_bytes]
        groups = [Cat(*padded[i:i + 8]) for i in range(0, len(padded), 8)]
        group = Signal(64)
        out_group = _select(groups, byte_index[3:])
        out_byte = _select([group[i:i + 8] for i in range(0, 64, 8)], byte_index[:3])
        payload_byte = Signal(8)
        tx_byte = Signal(8)
        m.d.comb += self.tx.payload.eq(tx_byte)
        # one CRC network for both directions: the link never receives while it replies
        sending = Signal()
        crc_next = crc16_step(crc, Mux(sending, tx_byte, byte), m)

        m.d.sync += [accel.start.eq(0), accel_reset.eq(0)]
        # every write port sees `write_addr` and `word`; WRITE_WORD raises one port's `en`
        for port, (_, bits, mask, _) in zip(write_ports, targets):
            m.d.comb += [port.addr.eq(write_addr), port.data.eq(word[:bits])]
            if mask:
                m.d.comb += port.mask.eq(word[bits:bits + mask])

        def receive(next_state):
            m.d.sync += crc.eq(crc_next)
            m.next = next_state

        def reject(code):
            m.d.sync += [status.eq(code), idle.eq(0)]
            m.next = "DISCARD"

        def reply(code, length, word_bytes, words, source="info"):
            m.d.sync += [
                status.eq(code), reply_length.eq(length), reply_last.eq(length - 1),
                reply_word_last.eq(word_bytes - 1),
                reply_words.eq(words), byte_index.eq(source_base[source]),
                word_base.eq(source_base[source]),
            ]
            m.next = "REPLY_SYNC"

        receiving = Signal()
        with m.If(receiving & self.rx.valid):
            m.d.sync += idle.eq(0)
        with m.Elif(receiving):
            m.d.sync += idle.eq(idle + 1)

        with m.FSM():
            with m.State("HUNT"):
                with m.If(self.rx.valid & (byte == REQUEST_SYNC)):
                    m.d.sync += [crc.eq(CRC_INIT), count.eq(0), phase.eq(0), words.eq(0),
                                 idle.eq(0)]
                    m.next = "COMMAND"

            # the bytes that only go into a register (or only into the CRC)
            for state, action, following in (
                    ("COMMAND", command.eq(byte), "LENGTH_LO"),
                    ("LENGTH_LO", length[:8].eq(byte), "LENGTH_HI"),
                    ("CRC_HI", None, "CRC_LO"),
                    ("CRC_LO", None, "CHECK")):
                with m.State(state):
                    m.d.comb += receiving.eq(1)
                    with m.If(idle == self._idle_timeout):
                        reject(Reply.TIMEOUT)
                    with m.Elif(self.rx.valid):
                        if action is not None:
                            m.d.sync += action
                        receive(following)

            with m.State("LENGTH_HI"):
                m.d.comb += receiving.eq(1)
                with m.If(idle == self._idle_timeout):
                    reject(Reply.TIMEOUT)
                with m.Elif(self.rx.valid):
                    m.d.sync += [length[8:].eq(byte), length_last.eq(Cat(length[:8], byte) - 1)]
                    with m.If(Cat(length[:8], byte) > self._max_payload):
                        reject(Reply.BAD_FRAME)
                    with m.Elif(Cat(length[:8], byte) == 0):
                        receive("CRC_HI")
                    with m.Else():
                        receive("PAYLOAD")

            with m.State("PAYLOAD"):
                m.d.comb += receiving.eq(1)
                m.d.comb += [buffer_wr.addr.eq(count), buffer_wr.data.eq(byte)]
                with m.If(idle == self._idle_timeout):
                    reject(Reply.TIMEOUT)
                with m.Elif(self.rx.valid):
                    m.d.comb += buffer_wr.en.eq(1)
                    m.d.sync += count.eq(count + 1)
                    for i in range(len(header)):
                        with m.If(count == i):
                            m.d.sync += header[i].eq(byte)
                    with m.If(count >= 3):
                        with m.If(phase == target_last):
                            m.d.sync += [phase.eq(0), words.eq(words + 1)]
                        with m.Else():
                            m.d.sync += phase.eq(phase + 1)
                    with m.If(count == length_last):
                        receive("CRC_HI")
                    with m.Else():
                        receive("PAYLOAD")

            # The checks of a complete frame, registered, then acted on: one cycle for the
            # comparisons, one for the decision (the two did not fit one iCE40 cycle).
            ok = Signal(data.StructLayout({name: 1 for name in
                                           ("crc", "info", "reset", "write", "run", "read")}))
            read_length = Signal(16)
            with m.State("CHECK"):
                depth = Array(Const(d, 17) for *_, d in targets)[target]
                m.d.sync += [
                    # the CRC of a frame followed by its own CRC (high byte first) is zero
                    ok.crc.eq(crc == 0),
                    ok.info.eq((command == Command.INFO) & (length == 0)),
                    ok.reset.eq((command == Command.RESET) & (length == 0)),
                    ok.write.eq((command == Command.WRITE) & (target < len(targets)) &
                                (length >= 3) & (phase == 0) & (words != 0) &
                                (address + words <= depth)),
                    ok.run.eq((command == Command.RUN) & (length == job_bytes)),
                    ok.read.eq((command == Command.READ) & (length == 5) &
                               (header[0] < config.cols) & (read_count != 0) &
                               (read_count <= max_read) &
                               (address + read_count <= config.out_depth)),
                    read_length.eq(_times_constant(read_count, result_bytes)),
                ]
                m.next = "DISPATCH"

            with m.State("DISPATCH"):
                with m.If(~ok.crc):
                    reject(Reply.BAD_CRC)
                with m.Elif(ok.info):
                    reply(Reply.OK, reply_bytes["info"], reply_bytes["info"], 1, "info")
                with m.Elif(ok.reset):
                    m.d.sync += accel_reset.eq(1)
                    reply(Reply.OK, 0, 0, 0)
                with m.Elif(ok.write):
                    m.d.sync += [count.eq(3), word_byte.eq(0), write_addr.eq(address)]
                    m.next = "WRITE_FETCH"
                with m.Elif(ok.run & ~accel.busy):
                    m.d.sync += [count.eq(0), word_byte.eq(0)]
                    m.next = "JOB_FETCH"
                with m.Elif(ok.read):
                    m.d.sync += [read_column.eq(header[0]), accel.result_read.addr.eq(address)]
                    reply(Reply.OK, read_length, result_bytes, read_count, "result")
                with m.Else():
                    reject(Reply.BAD_FRAME)

            # WRITE: bytes from the buffer into `word`; every full word goes to its memory
            with m.State("WRITE_FETCH"):
                m.d.comb += buffer_rd.addr.eq(count)
                m.next = "WRITE_LATCH"
            with m.State("WRITE_LATCH"):
                m.next = "WRITE_BYTE"
            with m.State("WRITE_BYTE"):
                m.d.sync += [word.word_select(word_byte, 8).eq(buffer_byte),
                             count.eq(count + 1)]
                with m.If(word_byte == target_last):
                    m.d.sync += word_byte.eq(0)
                    m.next = "WRITE_WORD"
                with m.Else():
                    m.d.sync += word_byte.eq(word_byte + 1)
                    m.next = "WRITE_FETCH"
            with m.State("WRITE_WORD"):
                m.d.comb += [port.en.eq(target == index) for index, port in enumerate(write_ports)]
                m.d.sync += write_addr.eq(write_addr + 1)
                with m.If(count == length):
                    reply(Reply.OK, 0, 0, 0)
                with m.Else():
                    m.next = "WRITE_FETCH"

            # RUN: the job from the buffer, start, wait, reply with counters and status
            with m.State("JOB_FETCH"):
                m.d.comb += buffer_rd.addr.eq(count)
                m.next = "JOB_LATCH"
            with m.State("JOB_LATCH"):
                m.next = "JOB_BYTE"
            with m.State("JOB_BYTE"):
                m.d.sync += [word.word_select(word_byte, 8).eq(buffer_byte),
                             count.eq(count + 1), word_byte.eq(word_byte + 1)]
                with m.If(count == length_last):
                    m.next = "JOB_START"
                with m.Else():
                    m.next = "JOB_FETCH"
            with m.State("JOB_START"):
                m.d.sync += accel.start.eq(1)
                m.next = "JOB_WAIT"
            with m.State("JOB_WAIT"):
                # `done` rises a cycle after `start` is seen at the earliest; `busy` covers it
                with m.If(~accel.start & ~accel.busy & accel.done):
                    reply(Reply.OK, reply_bytes["report"], reply_bytes["report"], 1, "report")

            with m.State("DISCARD"):
                # drop the rest of a broken frame: reject only once the line has gone quiet
                m.d.comb += receiving.eq(1)
                with m.If(idle == self._idle_timeout):
                    reply(status, 0, 0, 0)

            # the reply, sent through `tx`
            def send(value, next_state, *, checksummed=True):
                m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(value), sending.eq(1)]
                with m.If(self.tx.ready):
                    if checksummed:
                        m.d.sync += crc.eq(crc_next)
                    m.next = next_state

            with m.State("REPLY_SYNC"):
                m.d.sync += [count.eq(0), word_byte.eq(0), self.error.eq(status != Reply.OK)]
                send(REPLY_SYNC, "REPLY_STATUS", checksummed=False)
                m.d.sync += crc.eq(CRC_INIT)
            with m.State("REPLY_STATUS"):
                send(status, "REPLY_LENGTH_LO")
            with m.State("REPLY_LENGTH_LO"):
                send(reply_length[:8], "REPLY_LENGTH_HI")
            with m.State("REPLY_LENGTH_HI"):
                with m.If(reply_length == 0):
                    send(reply_length[8:], "REPLY_CRC_HI")
                with m.Else():
                    send(reply_length[8:], "REPLY_FETCH")
            # each payload byte is picked from its source a cycle before it is sent: the wide
            # byte select and the CRC would not fit one cycle together on an iCE40
            with m.State("REPLY_FETCH"):
                m.d.sync += group.eq(out_group)
                m.next = "REPLY_SELECT"
            with m.State("REPLY_SELECT"):
                m.d.sync += payload_byte.eq(out_byte)
                m.next = "REPLY_PAYLOAD"
            with m.State("REPLY_PAYLOAD"):
                send(payload_byte, "REPLY_FETCH")
                with m.If(self.tx.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == reply_last):
                        m.next = "REPLY_CRC_HI"
                    with m.Elif(word_byte == reply_word_last):
                        # next result word: its read data is on the port a cycle later
                        m.d.sync += [word_byte.eq(0), byte_index.eq(word_base),
                                     accel.result_read.addr.eq(accel.result_read.addr + 1)]
                        m.next = "REPLY_NEXT_WORD"
                    with m.Else():
                        m.d.sync += [word_byte.eq(word_byte + 1), byte_index.eq(byte_index + 1)]
            with m.State("REPLY_NEXT_WORD"):
                m.next = "REPLY_WAIT" if config.pipelined else "REPLY_FETCH"
            if config.pipelined:
                with m.State("REPLY_WAIT"):
                    m.next = "REPLY_FETCH"
            with m.State("REPLY_CRC_HI"):
                send(crc[8:], "REPLY_CRC_LO", checksummed=False)
            with m.State("REPLY_CRC_LO"):
                send(crc[:8], "HUNT", checksummed=False)
        return m
