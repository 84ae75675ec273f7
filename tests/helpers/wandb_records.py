"""Reading the records of an offline W&B run (`run-<id>.wandb`) back, as `wandb sync` would upload them.

The file is W&B's 7-byte header, then LevelDB's log format: 32 KiB blocks of chunks, each with a 7-byte
header (CRC, little-endian length, type: 1 full, 2 first, 3 middle, 4 last), each record a protobuf `Record`.
"""

import json
from pathlib import Path
from typing import Any

from wandb.proto.wandb_internal_pb2 import Record

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Record]:
    """Every record of the run file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # the block's tail is padding
            pos += left_in_block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + HEADER : pos + HEADER + length], pos + HEADER + length
        if kind in (FULL, LAST):
            records.append(Record.FromString(pending + chunk))
            pending = b""
        elif kind in (FIRST, MIDDLE):
            pending += chunk
    return records


def history_and_config(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's logged rows (`wandb.log` calls) and its config, values decoded from their JSON."""
    history, config = [], {}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
        elif kind == "config":
            config.update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.config.update}
            )
    return history, config
