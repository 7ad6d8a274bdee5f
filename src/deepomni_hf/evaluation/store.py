# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Resumable per-item results: `DIR/items.jsonl`, one JSON line per evaluated item, appended and flushed as soon as
the item is done, so a killed run loses at most the item in flight.

Every line carries a `key`: a hash of everything that determines the item's result (the checkpoint's identity, the
suite, the suite's settings, the data fingerprint, the judge, the item id). A rerun reuses a line only when its key
matches, so changing any argument re-evaluates the items it affects and never reuses a stale one. A line cut short by
a kill is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .errors import SkipItem


ITEMS_FILE = "items.jsonl"


def settings_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ItemStore:
    """Append-only item results with lookup by key (see the module docstring)."""

    def __init__(self, output_dir: str | os.PathLike, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else Path(output_dir) / ITEMS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        continue
                    if isinstance(entry, dict) and "key" in entry and "record" in entry:
                        self._records[entry["key"]] = entry["record"]
        self.reused = 0
        self.computed = 0

    def get(self, key: str) -> dict | None:
        return self._records.get(key)

    def put(self, key: str, record: dict, **meta) -> None:
        line = json.dumps({"key": key, **meta, "record": record}, default=_plain) + "\n"
        with open(self.path, "a+", encoding="utf-8") as handle:
            # A kill mid-line leaves no newline: start on a fresh line so this record stays readable.
            if handle.tell() > 0:
                handle.seek(handle.tell() - 1)
                if handle.read(1) != "\n":
                    handle.write("\n")
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._records[key] = record

    def run(self, items: Iterable[tuple[str, Any]], key_of: Callable[[str], str], evaluate: Callable[[Any], dict],
            desc: str, total: int | None = None, **meta) -> list[dict]:  # fmt: skip
        """Evaluates `(item_id, item)` pairs with `evaluate(item) -> record`, reusing stored records; a [`SkipItem`]
        becomes `{"skipped": reason, "message": ...}`. Returns the records in order, each with its `id`."""
        records = []
        for item_id, item in tqdm(items, desc=desc, total=total, unit="item"):
            key = key_of(item_id)
            record = self.get(key)
            if record is None:
                try:
                    record = evaluate(item)
                except SkipItem as skip:
                    record = {"skipped": skip.reason, "message": skip.message}
                record = {"id": item_id, **record}
                self.put(key, record, **meta)
                self.computed += 1
            else:
                self.reused += 1
            records.append(record)
        return records


def _plain(value):
    """JSON for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


__all__ = ["ITEMS_FILE", "ItemStore", "settings_key"]
