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
    ``column`` from ``addr``, each ``rows`` little-endian int32 (one with ``column_results``:
    then the word at ``addr`` is row ``addr % 2**b``'s output ``addr >> b``).
RESET
    none → none. Resets the accelerator (not the link).
"""

import enum

from amaranth.hdl import (Array, Cat, ClockDomain, ClockSignal, Const, DomainRenamer, Instance,
                          Module, Mux, ResetInserter, ResetSignal, Signal)
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus
from zeroskip.hw.accelerator import accelerator_for
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
    the whole tree below it twice).

    ``amaranth.lib.crc.catalog.CRC16_CCITT_FALSE`` is this same CRC (``tb/test_host.py`` checks
    the host's against it). It is kept by hand because of measured timing: lib.crc's
    ``Processor`` here, together with lib.memory's write-port signature (per-lane ``en``, see
    :func:`zeroskip.hw.layouts.write_signature`), left the ULX3S below 100 MHz on all five
    nextpnr seeds (95.8, 93.3, 98.8, 99.2, 93.5 MHz, against 103.2 with this network); the
    failing paths ran through the decoder lanes and the load counter's enable."""
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
    bus : bool
        For an SoC bus (:mod:`zeroskip.hw.bus`): ``rx`` gets a ``ready`` (a UART cannot wait,
        an AXI4-Stream master can), and the ``ext_*`` members below let a register block start
        runs and reset the accelerator. Off for the boards, whose Verilog it leaves unchanged.

    Members
    -------
    rx : In(stream of bytes, always ready)
    tx : Out(stream of bytes)
    busy : Out(1)
        The accelerator is running.
    error : Out(1)
        The last reply was a rejection.

    With ``bus``:

    ext_start, ext_reset : In(1)
        Held by the register block until ``ext_accepted``: run ``ext_job`` (no reply frame is
        sent), or reset the accelerator. Taken only between frames.
    ext_job : In(job_layout)
    ext_accepted : Out(1)
    done : Out(1)
    counters, status : Out
        The accelerator's, of its last run.
    """

    def __init__(self, config, *, clock_hz, max_payload=512, idle_timeout=1 << 16, bus=False):
        self._config = config
        self._bus = bus
        self._clock_hz = clock_hz
        self._max_payload = max_payload
        self._idle_timeout = idle_timeout
        if config.double_buffer:
            raise ValueError("double_buffer is not supported behind the host link yet (its "
                             "WRITE and READ address one bank)")
        if not 16 <= max_payload < 1 << 16:
            raise ValueError(f"max_payload must be 16..65535 bytes, not {max_payload}")
        # WRITE addresses are 16 bits, and a word must fit a frame
        for name, bits, mask, depth in write_targets(config):
            if depth > 1 << 16 or byte_count(bits + mask) + 3 > max_payload:
                raise ValueError(f"memory {name!r} cannot be written through a "
                                 f"{max_payload}-byte frame with 16-bit addresses")
        members = {
            "rx": In(stream.Signature(8, always_ready=not bus)),
            "tx": Out(stream.Signature(8)),
            "busy": Out(1),
            "error": Out(1),
        }
        if bus:
            members.update({
                "ext_start": In(1), "ext_reset": In(1), "ext_job": In(job_layout(config)),
                "ext_accepted": Out(1), "done": Out(1),
                "counters": Out(counters_layout(config)),
                "status": Out(data.ArrayLayout(DecodeStatus, config.cols)),
            })
        super().__init__(members)

    @property
    def config(self):
        return self._config

    def info(self):
        """The INFO reply's payload fields."""
        return {"digest": int.from_bytes(bytes.fromhex(self._config.digest()[:12]), "little"),
                "max_payload": self._max_payload, "clock_hz": self._clock_hz,
                "idle_timeout": self._idle_timeout}

    # The parts below keep the signal names, and the order in which signals, statements and FSM
    # states are created, of the single elaborate() they were cut from: the generated Verilog is
    # byte-identical, so the boards' placed and routed timing still holds.

    def elaborate(self, platform):
        config = self._config
        m = Module()

        accel_reset = Signal(name="accel_reset")
        accel = accelerator_for(config)
        if config.fanout_registers:
            m.submodules.accelerator = _with_registered_reset(m, accel, accel_reset, platform)
        else:
            m.submodules.accelerator = ResetInserter(accel_reset)(accel)
        m.d.comb += self.busy.eq(accel.busy)

        sizes = _Sizes(config, self.info(), accel)
        write_ports = [accel.act_write] + [getattr(accel, f"{name}_write")
                                           for name in accel.memory_names]
        buffer = _FrameBuffer(m, self._max_payload)
        frame = _Frame(self.rx.payload, sizes, self._idle_timeout)
        word = _Word(sizes)
        reply = _Reply(config, sizes, frame.status)
        if self._bus:
            frame.accel_reset, frame.job_word = accel_reset, word.word
            frame.external = Signal(name="external")   # the running job came from ext_start
        # the job is the word a RUN loaded: nothing writes `word` while the accelerator runs
        m.d.comb += [accel.result_column.eq(reply.read_column),
                     accel.job.eq(word.word[:job_layout(config).size])]
        reply.lay_out({"info": sizes.info, "report": sizes.report,
                       "result": self._result_word(m, accel)})
        m.d.comb += self.tx.payload.eq(reply.tx_byte)
        # one CRC network for both directions: the link never receives while it replies
        frame.crc_next = crc16_step(frame.crc, Mux(reply.sending, reply.tx_byte, frame.byte), m)

        m.d.sync += [accel.start.eq(0), accel_reset.eq(0)]
        self._connect_write_ports(m, write_ports, sizes, word)
        self._count_idle(m, frame)

        # HUNT .. CRC_LO -> CHECK -> DISPATCH -> (WRITE_* | JOB_*) -> REPLY_* -> HUNT, and
        # DISCARD -> REPLY_* for a broken frame. The parts add their states in this order.
        with m.FSM() as fsm:
            self._receive_frame(m, frame, buffer)
            ok, read_length = self._check_frame(m, frame, sizes)
            self._dispatch(m, frame, word, reply, ok, read_length, sizes, accel, accel_reset)
            self._write_words(m, frame, word, reply, buffer, write_ports)
            self._run_job(m, frame, word, reply, buffer, sizes, accel)
            self._discard(m, frame, reply)
            self._serialize_reply(m, frame, word, reply, accel)
        if self._bus:
            # an AXI4-Stream peer samples these from time zero; reading the reset puts it in
            # their `always @*` blocks, which Icarus evaluates only when something they read
            # changes (the FSM state does not, until the first frame)
            with m.If(ResetSignal()):
                m.d.comb += [self.tx.valid.eq(0), frame.receiving.eq(0)]
            m.d.comb += [self.rx.ready.eq(fsm.ongoing("HUNT") | frame.receiving),
                         self.done.eq(accel.done), self.counters.eq(accel.counters),
                         self.status.eq(accel.status)]
        return m

    def _result_word(self, m, accel):
        """The result port's read data as the reply reads it: registered on pipelined
        configurations."""
        result = accel.result_read.data.as_value()
        if self._config.pipelined:
            # registered: the result memories' read data, the column select and the first byte
            # select step do not fit one 100 MHz cycle together (REPLY_WAIT waits for it)
            result_word = Signal(len(result), name="result_word")
            m.d.sync += result_word.eq(result)
            result = result_word
        return result

    def _connect_write_ports(self, m, write_ports, sizes, word):
        """Every write port sees `write_addr` and `word`; WRITE_WORD raises one port's `en`."""
        for port, (_, bits, mask, _) in zip(write_ports, sizes.targets):
            m.d.comb += [port.addr.eq(word.write_addr), port.data.eq(word.word[:bits])]
            if mask:
                m.d.comb += port.mask.eq(word.word[bits:bits + mask])

    def _count_idle(self, m, frame):
        """Counts the cycles since the last byte while a frame is being received, so a broken
        frame ends after ``idle_timeout`` cycles of silence."""
        frame.receiving = Signal(name="receiving")
        with m.If(frame.receiving & self.rx.valid):
            m.d.sync += frame.idle.eq(0)
        with m.Elif(frame.receiving):
            m.d.sync += frame.idle.eq(frame.idle + 1)

    def _receive_frame(self, m, frame, buffer):
        """HUNT .. PAYLOAD: a request frame byte by byte, into the CRC, the header registers
        and the frame buffer; on to CHECK after its CRC bytes, or to DISCARD on a length beyond
        ``max_payload`` or a silence of ``idle_timeout`` cycles."""
        rx, byte, idle = self.rx, frame.byte, frame.idle
        with m.State("HUNT"):
            with m.If(rx.valid & (byte == REQUEST_SYNC)):
                m.d.sync += [frame.crc.eq(CRC_INIT), frame.count.eq(0), frame.phase.eq(0),
                             frame.words.eq(0), idle.eq(0)]
                m.next = "COMMAND"
            if self._bus:
                # the register block's requests, between frames
                with m.Elif(self.ext_reset):
                    m.d.comb += self.ext_accepted.eq(1)
                    m.d.sync += frame.accel_reset.eq(1)
                with m.Elif(self.ext_start):
                    m.d.comb += self.ext_accepted.eq(1)
                    m.d.sync += [frame.external.eq(1),
                                 frame.job_word.eq(self.ext_job.as_value())]
                    m.next = "JOB_START"

        # the bytes that only go into a register (or only into the CRC)
        for state, action, following in (
                ("COMMAND", frame.command.eq(byte), "LENGTH_LO"),
                ("LENGTH_LO", frame.length[:8].eq(byte), "LENGTH_HI"),
                ("CRC_HI", None, "CRC_LO"),
                ("CRC_LO", None, "CHECK")):
            with m.State(state):
                m.d.comb += frame.receiving.eq(1)
                with m.If(idle == self._idle_timeout):
                    frame.reject(m, Reply.TIMEOUT)
                with m.Elif(rx.valid):
                    if action is not None:
                        m.d.sync += action
                    frame.receive(m, following)

        length = frame.length
        with m.State("LENGTH_HI"):
            m.d.comb += frame.receiving.eq(1)
            with m.If(idle == self._idle_timeout):
                frame.reject(m, Reply.TIMEOUT)
            with m.Elif(rx.valid):
                m.d.sync += [length[8:].eq(byte),
                             frame.length_last.eq(Cat(length[:8], byte) - 1)]
                with m.If(Cat(length[:8], byte) > self._max_payload):
                    frame.reject(m, Reply.BAD_FRAME)
                with m.Elif(Cat(length[:8], byte) == 0):
                    frame.receive(m, "CRC_HI")
                with m.Else():
                    frame.receive(m, "PAYLOAD")

        count, phase = frame.count, frame.phase
        with m.State("PAYLOAD"):
            m.d.comb += frame.receiving.eq(1)
            m.d.comb += [buffer.write.addr.eq(count), buffer.write.data.eq(byte)]
            with m.If(idle == self._idle_timeout):
                frame.reject(m, Reply.TIMEOUT)
            with m.Elif(rx.valid):
                m.d.comb += buffer.write.en.eq(1)
                m.d.sync += count.eq(count + 1)
                for i in range(len(frame.header)):
                    with m.If(count == i):
                        m.d.sync += frame.header[i].eq(byte)
                with m.If(count >= 3):
                    with m.If(phase == frame.target_last):
                        m.d.sync += [phase.eq(0), frame.words.eq(frame.words + 1)]
                    with m.Else():
                        m.d.sync += phase.eq(phase + 1)
                with m.If(count == frame.length_last):
                    frame.receive(m, "CRC_HI")
                with m.Else():
                    frame.receive(m, "PAYLOAD")

    def _check_frame(self, m, frame, sizes):
        """CHECK: every test of a complete frame, one flag per command, registered so that
        DISPATCH only chooses (the comparisons and the decision did not fit one iCE40 cycle).

        Returns the flags ``ok`` and the READ reply's length in bytes."""
        config = self._config
        command, length, target = frame.command, frame.length, frame.target
        ok = Signal(data.StructLayout({name: 1 for name in
                                       ("crc", "info", "reset", "write", "run", "read")}),
                    name="ok")
        read_length = Signal(16, name="read_length")
        with m.State("CHECK"):
            depth = Array(Const(d, 17) for *_, d in sizes.targets)[target]
            m.d.sync += [
                # the CRC of a frame followed by its own CRC (high byte first) is zero
                ok.crc.eq(frame.crc == 0),
                ok.info.eq((command == Command.INFO) & (length == 0)),
                ok.reset.eq((command == Command.RESET) & (length == 0)),
                ok.write.eq((command == Command.WRITE) & (target < len(sizes.targets)) &
                            (length >= 3) & (frame.phase == 0) & (frame.words != 0) &
                            (frame.address + frame.words <= depth)),
                ok.run.eq((command == Command.RUN) & (length == sizes.job_bytes)),
                ok.read.eq((command == Command.READ) & (length == 5) &
                           (frame.header[0] < config.cols) & (frame.read_count != 0) &
                           (frame.read_count <= sizes.max_read) &
                           (frame.address + frame.read_count <= config.result_depth)),
                read_length.eq(_times_constant(frame.read_count, sizes.result_bytes)),
            ]
            m.next = "DISPATCH"
        return ok, read_length

    def _dispatch(self, m, frame, word, reply, ok, read_length, sizes, accel, accel_reset):
        """DISPATCH: a damaged or invalid frame is rejected; INFO and RESET reply at once,
        WRITE and RUN go on to fetch their payload, READ replies from the result port."""
        with m.State("DISPATCH"):
            with m.If(~ok.crc):
                frame.reject(m, Reply.BAD_CRC)
            with m.Elif(ok.info):
                reply.start(m, Reply.OK, sizes.reply_bytes["info"], sizes.reply_bytes["info"],
                            1, "info")
            with m.Elif(ok.reset):
                m.d.sync += accel_reset.eq(1)
                reply.start(m, Reply.OK, 0, 0, 0)
            with m.Elif(ok.write):
                m.d.sync += [frame.count.eq(3), word.word_byte.eq(0),
                             word.write_addr.eq(frame.address)]
                m.next = "WRITE_FETCH"
            with m.Elif(ok.run & ~accel.busy):
                m.d.sync += [frame.count.eq(0), word.word_byte.eq(0)]
                m.next = "JOB_FETCH"
            with m.Elif(ok.read):
                m.d.sync += [reply.read_column.eq(frame.header[0]),
                             accel.result_read.addr.eq(frame.address)]
                reply.start(m, Reply.OK, read_length, sizes.result_bytes, frame.read_count,
                            "result")
            with m.Else():
                frame.reject(m, Reply.BAD_FRAME)

    def _write_words(self, m, frame, word, reply, buffer, write_ports):
        """WRITE_*: bytes from the buffer into `word`; every full word goes to its memory."""
        count, word_byte = frame.count, word.word_byte
        _fetch_byte(m, buffer, count, "WRITE")
        with m.State("WRITE_BYTE"):
            m.d.sync += [word.word.word_select(word_byte, 8).eq(buffer.byte),
                         count.eq(count + 1)]
            with m.If(word_byte == frame.target_last):
                m.d.sync += word_byte.eq(0)
                m.next = "WRITE_WORD"
            with m.Else():
                m.d.sync += word_byte.eq(word_byte + 1)
                m.next = "WRITE_FETCH"
        with m.State("WRITE_WORD"):
            m.d.comb += [port.en.eq(frame.target == index)
                         for index, port in enumerate(write_ports)]
            m.d.sync += word.write_addr.eq(word.write_addr + 1)
            with m.If(count == frame.length):
                reply.start(m, Reply.OK, 0, 0, 0)
            with m.Else():
                m.next = "WRITE_FETCH"

    def _run_job(self, m, frame, word, reply, buffer, sizes, accel):
        """JOB_*: the job from the buffer into `word`, start, wait, reply with the counters and
        the lane status."""
        count, word_byte = frame.count, word.word_byte
        _fetch_byte(m, buffer, count, "JOB")
        with m.State("JOB_BYTE"):
            m.d.sync += [word.word.word_select(word_byte, 8).eq(buffer.byte),
                         count.eq(count + 1), word_byte.eq(word_byte + 1)]
            with m.If(count == frame.length_last):
                m.next = "JOB_START"
            with m.Else():
                m.next = "JOB_FETCH"
        with m.State("JOB_START"):
            m.d.sync += accel.start.eq(1)
            m.next = "JOB_WAIT"
        with m.State("JOB_WAIT"):
            # `done` rises a cycle after `start` is seen at the earliest; `busy` covers it
            with m.If(~accel.start & ~accel.busy & accel.done):
                if self._bus:
                    with m.If(frame.external):
                        # started by the register block: it reads the counters itself
                        m.d.sync += frame.external.eq(0)
                        m.next = "HUNT"
                    with m.Else():
                        reply.start(m, Reply.OK, sizes.reply_bytes["report"],
                                    sizes.reply_bytes["report"], 1, "report")
                else:
                    reply.start(m, Reply.OK, sizes.reply_bytes["report"],
                                sizes.reply_bytes["report"], 1, "report")

    def _discard(self, m, frame, reply):
        """DISCARD: drops the rest of a broken frame, and replies with the rejection only once
        the line has gone quiet, so the host's retry never collides with the frame's tail."""
        with m.State("DISCARD"):
            m.d.comb += frame.receiving.eq(1)
            with m.If(frame.idle == self._idle_timeout):
                reply.start(m, frame.status, 0, 0, 0)

    def _send(self, m, frame, reply, value, next_state, *, checksummed=True):
        """Offers ``value`` on `tx`; once taken, into the CRC (if ``checksummed``) and on to
        ``next_state``."""
        m.d.comb += [self.tx.valid.eq(1), reply.tx_byte.eq(value), reply.sending.eq(1)]
        with m.If(self.tx.ready):
            if checksummed:
                m.d.sync += frame.crc.eq(frame.crc_next)
            m.next = next_state

    def _serialize_reply(self, m, frame, word, reply, accel):
        """REPLY_*: the reply frame through `tx`: sync, status, length, the payload words
        picked byte by byte from their source, the CRC; then back to HUNT."""
        count, word_byte, crc = frame.count, word.word_byte, frame.crc

        def send(value, next_state, *, checksummed=True):
            self._send(m, frame, reply, value, next_state, checksummed=checksummed)

        with m.State("REPLY_SYNC"):
            m.d.sync += [count.eq(0), word_byte.eq(0), self.error.eq(frame.status != Reply.OK)]
            send(REPLY_SYNC, "REPLY_STATUS", checksummed=False)
            m.d.sync += crc.eq(CRC_INIT)
        with m.State("REPLY_STATUS"):
            send(frame.status, "REPLY_LENGTH_LO")
        with m.State("REPLY_LENGTH_LO"):
            send(reply.length[:8], "REPLY_LENGTH_HI")
        with m.State("REPLY_LENGTH_HI"):
            with m.If(reply.length == 0):
                send(reply.length[8:], "REPLY_CRC_HI")
            with m.Else():
                send(reply.length[8:], "REPLY_FETCH")
        # each payload byte is picked from its source a cycle before it is sent: the wide
        # byte select and the CRC would not fit one cycle together on an iCE40
        with m.State("REPLY_FETCH"):
            m.d.sync += reply.group.eq(reply.out_group)
            m.next = "REPLY_SELECT"
        with m.State("REPLY_SELECT"):
            m.d.sync += reply.payload_byte.eq(reply.out_byte)
            m.next = "REPLY_PAYLOAD"
        with m.State("REPLY_PAYLOAD"):
            send(reply.payload_byte, "REPLY_FETCH")
            with m.If(self.tx.ready):
                m.d.sync += count.eq(count + 1)
                with m.If(count == reply.last):
                    m.next = "REPLY_CRC_HI"
                with m.Elif(word_byte == reply.word_last):
                    # next result word: its read data is on the port a cycle later
                    m.d.sync += [word_byte.eq(0), reply.byte_index.eq(reply.word_base),
                                 accel.result_read.addr.eq(accel.result_read.addr + 1)]
                    m.next = "REPLY_NEXT_WORD"
                with m.Else():
                    m.d.sync += [word_byte.eq(word_byte + 1),
                                 reply.byte_index.eq(reply.byte_index + 1)]
        # the next word's read data: the result port's latency, and the registered result word
        waits = [f"REPLY_WAIT{i or ''}" for i in
                 range(self._config.result_read_latency - 1 + self._config.pipelined)]
        for state, next_state in zip(["REPLY_NEXT_WORD", *waits], [*waits, "REPLY_FETCH"]):
            with m.State(state):
                m.next = next_state
        with m.State("REPLY_CRC_HI"):
            send(crc[8:], "REPLY_CRC_LO", checksummed=False)
        with m.State("REPLY_CRC_LO"):
            send(crc[:8], "HUNT", checksummed=False)


def _with_registered_reset(m, accel, accel_reset, platform):
    """``accel`` in a domain of the ``sync`` clock whose reset is one flip-flop: the link's
    ``accel_reset`` or the ``sync`` domain's own reset, a cycle late
    (:attr:`~zeroskip.config.ArrayConfig.fanout_registers`). On an ECP5 the flip-flop drives
    the reset pins through a global buffer (DCCA), as a clock would: nextpnr promotes only
    clocks to the global network by itself."""
    reset = Signal(init=1, name="accel_reset_registered")   # 1 while `sync` resets
    m.d.sync += reset.eq(accel_reset)
    m.domains.accel = domain = ClockDomain("accel", local=True)
    m.d.comb += domain.clk.eq(ClockSignal("sync"))
    if getattr(platform, "family", None) == "ecp5":
        m.submodules.reset_buffer = Instance("DCCA", i_CLKI=reset, i_CE=1, o_CLKO=domain.rst)
    else:
        m.d.comb += domain.rst.eq(reset)
    return DomainRenamer("accel")(accel)


def _fetch_byte(m, buffer, count, prefix):
    """``prefix``_FETCH, ``prefix``_LATCH: the frame buffer's byte at ``count`` (its read data
    registered once more, :class:`_FrameBuffer`), then on to ``prefix``_BYTE."""
    with m.State(f"{prefix}_FETCH"):
        m.d.comb += buffer.read.addr.eq(count)
        m.next = f"{prefix}_LATCH"
    with m.State(f"{prefix}_LATCH"):
        m.next = f"{prefix}_BYTE"


class _Sizes:
    """The byte counts of everything the link moves, and the constant INFO payload and the
    run report it replies with (plain numbers and values, no signals)."""

    def __init__(self, config, info_fields, accel):
        self.targets = write_targets(config)
        self.word_bytes = [byte_count(bits + mask) for _, bits, mask, _ in self.targets]
        self.job_bytes = byte_count(job_layout(config).size)
        self.result_bytes = byte_count(config.result_rows * config.acc_width)
        self.max_read = min(config.result_depth, 0xFFFF // self.result_bytes)
        self.info = Const(info_layout().const(info_fields).as_value().value, info_layout().size)
        self.report = Cat(accel.counters.as_value(), accel.status.as_value())
        self.reply_bytes = {"info": byte_count(len(self.info)),
                            "report": byte_count(len(self.report))}
        # the longest word: a memory word, the job, a result word or a whole INFO/RUN reply
        self.longest = max(self.word_bytes + [self.job_bytes, self.result_bytes,
                                              *self.reply_bytes.values()])


class _FrameBuffer:
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


class _Frame:
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


class _Word:
    """A word assembled from the buffer's bytes: a memory word of WRITE, or the job of RUN."""

    def __init__(self, sizes):
        self.word = Signal(8 * max(sizes.word_bytes + [sizes.job_bytes]), name="word")
        self.word_byte = Signal(range(sizes.longest + 1), name="word_byte")
        self.write_addr = Signal(16, name="write_addr")


class _Reply:
    """The reply: `words` words of `word_last + 1` bytes, from one of the sources laid out byte
    by byte: INFO's constant, the run report, the result port. A byte multiplexer, where
    `word_select` on a wide vector would build a barrel shifter (over a thousand iCE40 LUTs)."""

    def __init__(self, config, sizes, status):
        self.status = status
        self.length = Signal(16, name="reply_length")
        self.last = Signal(16, name="reply_last")                  # length - 1
        self.word_last = Signal(range(sizes.longest + 1), name="reply_word_last")
        self.words = Signal(16, name="reply_words")
        self.read_column = Signal(range(config.cols), name="read_column")

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
