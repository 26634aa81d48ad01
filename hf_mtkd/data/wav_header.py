"""Is a WAV file shorter than its header says? (A download or copy that stopped half-way.)

Hand-written because neither decoder tells: FFmpeg (torchcodec, which `datasets` uses) and
libsndfile both clamp the `data` chunk to the bytes present and decode the rest without a word,
and neither exposes the size the header declares. Reading the RIFF chunk list is a few bytes per file.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Optional, Union

# A `data` size of 0 or 0xFFFFFFFF means "unknown length" (a WAV written to a pipe), not truncation.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64


@dataclass(frozen=True)
class WavShortfall:
    declared_bytes: int
    present_bytes: int
    byte_rate: int  # bytes of audio per second, from the fmt chunk (0 when absent)

    def describe(self) -> str:
        if self.byte_rate > 0:
            return (f"the header declares {self.declared_bytes / self.byte_rate:.2f} s of audio but the file holds "
                    f"{self.present_bytes / self.byte_rate:.2f} s")
        return f"the header declares {self.declared_bytes} bytes of audio but the file holds {self.present_bytes}"


def wav_shortfall(source: Union[str, os.PathLike, bytes]) -> Optional[WavShortfall]:
    """The declared and present sizes of the `data` chunk of a RIFF/WAVE file holding less than it declares.

    None for a complete WAV, for anything that is not a RIFF/WAVE file (RF64 included), and for a WAV
    of unknown length. `source` is a path or the file's bytes.
    """
    if isinstance(source, (bytes, bytearray)):
        return _scan(io.BytesIO(bytes(source)), len(source))
    try:
        with open(source, "rb") as handle:
            return _scan(handle, os.fstat(handle.fileno()).st_size)
    except OSError:
        return None  # unreadable files are the decoder's to report


def _scan(handle, file_size: int) -> Optional[WavShortfall]:
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = 0
    position = 12
    for _ in range(_MAX_CHUNKS):
        header = handle.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        body = position + 8
        if chunk_id == b"fmt " and size >= 12:
            byte_rate = struct.unpack("<I", handle.read(12)[8:12])[0]
        if chunk_id == b"data":
            present = max(0, file_size - body)
            if size in _UNKNOWN_SIZES or present >= size:
                return None
            return WavShortfall(declared_bytes=size, present_bytes=present, byte_rate=byte_rate)
        position = body + size + (size & 1)  # chunks are padded to an even length
        if position >= file_size:
            return None
        handle.seek(position)
    return None
