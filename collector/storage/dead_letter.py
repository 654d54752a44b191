"""Dead-letter file: points the server refused for good, one JSON object per line (format v1).

``{"v": 1, "ts_ms": <when refused>, "reason": "field_type_conflict", "error": "<server
message>", "line": "<line protocol>"}``. Appended and fsynced before the spool rows are deleted,
so a refused point is always either in the spool or here. Replay after fixing the cause with
``jq -r .line dead-letter.jsonl | curl --data-binary @- 'http://host:8086/write?db=loaxa&precision=ms'``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path


class DeadLetter:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def add(self, entries: Iterable[tuple[str, str, str]]) -> int:
        """Append (line, reason, error) entries durably; returns how many were written."""
        now = int(time.time() * 1000)
        text = "".join(
            json.dumps(
                {"v": 1, "ts_ms": now, "reason": reason, "error": error[:1000], "line": line},
                ensure_ascii=False,
            )
            + "\n"
            for line, reason, error in entries
        )
        if not text:
            return 0
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return text.count("\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
