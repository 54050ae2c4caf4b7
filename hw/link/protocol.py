"""The host link's wire protocol: a framed, checksummed command protocol over a byte stream (the
board's UART) in front of the accelerator. Everything here is shared by the link
(:class:`zeroskip.hw.link.host_link.HostLink`) and the host (:mod:`zeroskip.platforms.runtime`).

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

Behind a board's network engine (:func:`zeroskip.hw.link.device.engine_device`) the same
commands load the engine's memories (WRITE), run an inference (RUN, a reserved byte → the
engine's counters, its fault flag and the link's byte counts) and read the output map (READ,
column 0, a byte per word).
"""

import enum

from amaranth.hdl import Mux, Signal
from amaranth.lib import data

__all__ = ["REQUEST_SYNC", "REPLY_SYNC", "CRC_INIT", "CRC_POLY", "Command", "Reply",
           "write_targets", "info_layout", "run_report_layout", "byte_count", "crc16_step"]

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
    """The memories WRITE can fill on an accelerator, in target order: ``[(name, data_bits,
    mask_bits, depth)]`` (:func:`zeroskip.hw.link.device.accelerator_device`).

    A word is ``data | mask << data_bits``, little-endian in ``byte_count`` bytes. Target 0 is
    the activations (one int8 per PE row); then one per decoder memory, with one slot of
    ``data`` and one ``mask`` bit per lane, exactly the accelerator's write ports.
    """
    from zeroskip.hw.link.device import accelerator_device
    return accelerator_device(config).targets


def info_layout():
    return data.StructLayout({
        "digest": 48,          # the first 6 bytes of ArrayConfig.digest()
        "max_payload": 16,
        "clock_hz": 32,
        "idle_timeout": 32,    # cycles
    })


def run_report_layout(config):
    """RUN's reply on an accelerator: its counters and lane status."""
    from zeroskip.hw.link.device import accelerator_device
    return accelerator_device(config).report_layout


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
