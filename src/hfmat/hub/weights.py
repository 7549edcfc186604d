"""Safetensors header checks: a truncated or corrupt weights file is named before anything loads it.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (tensor name ->
dtype, shape, ``data_offsets`` relative to the end of the header), then the tensor bytes. The file
is complete when its size is exactly 8 + N + the largest end offset.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from hfmat.hub.errors import CorruptWeightsError

#: A header larger than this is not a real safetensors header (the format caps it at 100 MB).
MAX_HEADER = 100_000_000


def check_safetensors(path: str | Path) -> int:
    """Check ``path``'s header and size; return the number of tensors or raise CorruptWeightsError."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CorruptWeightsError(f"{path} is not a safetensors file: it has only {size} bytes")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise CorruptWeightsError(
                f"{path} is truncated or not a safetensors file: its header claims {n} bytes, "
                f"the file has {size} bytes in all"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CorruptWeightsError(f"{path} has a corrupt safetensors header (not JSON): {err}") from err
    if not isinstance(header, dict):
        raise CorruptWeightsError(f"{path} has a corrupt safetensors header (not a JSON object)")
    end = 0
    tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
        except (TypeError, KeyError, ValueError) as err:
            raise CorruptWeightsError(f"{path}: tensor {name!r} has no valid data_offsets") from err
        end = max(end, int(stop))
        tensors += 1
    expected = 8 + n + end
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise CorruptWeightsError(
            f"{path} is {what}: its header describes {expected} bytes, the file has {size} "
            f"(re-download it, e.g. `hf download <repo> --force-download`, or re-save it)"
        )
    return tensors


def check_weights(folder: str | Path) -> list[Path]:
    """Check every ``*.safetensors`` file under ``folder``; return them (sorted)."""
    files = sorted(Path(folder).rglob("*.safetensors"))
    for file in files:
        check_safetensors(file)
    return files
