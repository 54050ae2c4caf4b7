"""The host link: the protocol engine (:mod:`zeroskip.hw.link.protocol` describes the frames and
commands) and the accelerator it drives.

:class:`HostLink` buffers a request whole and executes it only once its CRC checks out, so a
damaged frame never writes anything; on any error it drops bytes until the line has been idle for
``idle_timeout`` cycles and only then rejects the frame. Its FSM is cut into documented methods,
one per group of states; the registers they share are in :mod:`zeroskip.hw.link.frames`.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus
from zeroskip.hw.layouts import counters_layout, job_layout
from zeroskip.hw.link.device import LinkDevice, accelerator_device
from zeroskip.hw.link.frames import Frame, FrameBuffer, ReplyFrame, Sizes, Word
from zeroskip.hw.link.protocol import (CRC_INIT, REPLY_SYNC, REQUEST_SYNC, Command, Reply,
                                       byte_count, crc16_step)
from zeroskip.hw.link.reset import with_registered_reset

__all__ = ["HostLink"]


class HostLink(wiring.Component):
    """The protocol engine and the device it drives: the accelerator, or the network engine.

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
    device : LinkDevice or None
        What the link drives (:mod:`zeroskip.hw.link.device`): by default the accelerator of
        ``config``; :func:`~zeroskip.hw.link.device.engine_device` for a network engine.

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

    def __init__(self, config, *, clock_hz, max_payload=512, idle_timeout=1 << 16, bus=False,
                 device: LinkDevice | None = None):
        self._config = config
        self._device = device or accelerator_device(config)
        if bus and self._device.link_counts:
            raise ValueError("the network engine is not built behind an SoC bus")
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
        for name, bits, mask, depth in self._device.targets:
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
        return {"digest": int.from_bytes(bytes.fromhex(self._device.digest[:12]), "little"),
                "max_payload": self._max_payload, "clock_hz": self._clock_hz,
                "idle_timeout": self._idle_timeout}

    # The parts below keep the signal names, and the order in which signals, statements and FSM
    # states are created, of the single elaborate() they were cut from: the generated Verilog is
    # byte-identical, so the boards' placed and routed timing still holds.

    def elaborate(self, platform):
        config = self._config
        m = Module()

        accel_reset = Signal(name="accel_reset")
        device = self._device
        accel = device.make()
        if config.fanout_registers:
            m.submodules.accelerator = with_registered_reset(m, accel, accel_reset, platform)
        else:
            m.submodules.accelerator = ResetInserter(accel_reset)(accel)
        m.d.comb += self.busy.eq(accel.busy)

        sizes = Sizes(device, self.info(), accel, self._count_link(m) if device.link_counts
                      else ())
        write_ports = [accel.act_write] + [getattr(accel, f"{name}_write")
                                           for name in accel.memory_names]
        buffer = FrameBuffer(m, self._max_payload)
        frame = Frame(self.rx.payload, sizes, self._idle_timeout)
        word = Word(sizes)
        reply = ReplyFrame(device.read_columns, sizes, frame.status)
        if self._bus:
            frame.accel_reset, frame.job_word = accel_reset, word.word
            frame.external = Signal(name="external")   # the running job came from ext_start
        # the job is the word a RUN loaded: nothing writes `word` while the accelerator runs
        m.d.comb += [accel.result_column.eq(reply.read_column),
                     accel.job.eq(word.word[:device.job_bits])]
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

    def _count_link(self, m):
        """The bytes the link received and sent (wrapping 32-bit counts), as they were when the
        last RUN started: RUN's reply reports them, so the host learns from the hardware what
        an inference moves over the link (the difference between two RUNs)."""
        received, sent = Signal(32, name="link_rx"), Signal(32, name="link_tx")
        self._link_counts = snapshot = (Signal(32, name="link_rx_at_run"),
                                        Signal(32, name="link_tx_at_run"))
        with m.If(self.rx.valid & (self.rx.ready if self._bus else 1)):
            m.d.sync += received.eq(received + 1)
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += sent.eq(sent + 1)
        self._link_now = (received, sent)
        return snapshot

    def _result_word(self, m, accel):
        """The result port's read data as the reply reads it: registered on pipelined
        configurations."""
        result = accel.result_read.data.as_value()
        if self._device.registered_read:
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
        device = self._device
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
                           (frame.header[0] < device.read_columns) &
                           (frame.read_count != 0) & (frame.read_count <= sizes.max_read) &
                           (frame.address + frame.read_count <= device.read_depth)),
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
            if self._device.link_counts:
                m.d.sync += [snap.eq(now) for snap, now in zip(self._link_counts,
                                                               self._link_now)]
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
                 range(self._device.read_latency - 1 + self._device.registered_read)]
        for state, next_state in zip(["REPLY_NEXT_WORD", *waits], [*waits, "REPLY_FETCH"]):
            with m.State(state):
                m.next = next_state
        with m.State("REPLY_CRC_HI"):
            send(crc[8:], "REPLY_CRC_LO", checksummed=False)
        with m.State("REPLY_CRC_LO"):
            send(crc[:8], "HUNT", checksummed=False)


def _fetch_byte(m, buffer, count, prefix):
    """``prefix``_FETCH, ``prefix``_LATCH: the frame buffer's byte at ``count`` (its read data
    registered once more, :class:`~zeroskip.hw.link.frames.FrameBuffer`), then on to
    ``prefix``_BYTE."""
    with m.State(f"{prefix}_FETCH"):
        m.d.comb += buffer.read.addr.eq(count)
        m.next = f"{prefix}_LATCH"
    with m.State(f"{prefix}_LATCH"):
        m.next = f"{prefix}_BYTE"


def _times_constant(value, constant):
    """``value * constant`` as shifts and adds, so iCE40 synthesis does not spend a DSP on it."""
    terms = [value << i for i in range(constant.bit_length()) if constant >> i & 1]
    return sum(terms[1:], terms[0])

