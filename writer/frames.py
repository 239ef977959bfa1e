"""Length-prefixed frames over a stream socket: the wire format between serve and its writer process.

Each frame is an 8-byte big-endian length and that many bytes. Our own format, rather than
`multiprocessing.connection`'s, because serve reads its end from the event loop without
blocking (`recv` with MSG_DONTWAIT) and must be able to take whatever part of a frame has arrived.
What the frames carry: writer/parent_link.py.
"""

from __future__ import annotations

import socket
import struct

_HEADER = struct.Struct("!Q")
READ_SIZE = 256 * 1024
READY = "ready"  # the child's first frame once it has the database open; else why it has not


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


class FrameBuffer:
    """Bytes as they arrive in, whole frames out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take(self) -> bytes | None:
        """The next whole frame, or None until more bytes have arrived."""
        end = self._frame_end()
        if end is None:
            return None
        payload = bytes(self._buffer[_HEADER.size:end])
        del self._buffer[:end]
        return payload

    def has_frame(self) -> bool:
        return self._frame_end() is not None

    def _frame_end(self) -> int | None:
        """Where the first frame ends in the buffer, once all of it has arrived."""
        if len(self._buffer) < _HEADER.size:
            return None
        end = _HEADER.size + _HEADER.unpack_from(self._buffer)[0]
        return end if len(self._buffer) >= end else None


def receive(sock: socket.socket, buffer: FrameBuffer, *, wait: bool) -> bool:
    """Move what the socket holds into `buffer`; False at end of stream.

    wait=True blocks until some bytes arrive; wait=False takes only what is there already
    (MSG_DONTWAIT: the socket itself stays blocking for the other side's writes).
    """
    try:
        data = sock.recv(READ_SIZE, 0 if wait else socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    if not data:
        return False
    buffer.feed(data)
    return True
