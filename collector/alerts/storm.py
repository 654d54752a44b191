"""Storm control: group alerts per person per short window, and cap messages per person.

When one person's line has been quiet for ``window_ms`` an alert goes out at once (no added
delay for the usual single failure) and opens a window; alerts for that person arriving inside
the window wait and leave together when it ends, as one grouped message. Independently, each
person gets at most ``cap`` messages per ``cap_window_ms``; the rest are dropped, counted and
logged by the router. Pure: the clock is passed in; ``snapshot()`` is plain JSON-able data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StormControl:
    window_ms: int
    cap: int
    cap_window_ms: int
    last_alert_ms: dict[str, int] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)  # person -> alert keys
    window_end_ms: dict[str, int] = field(default_factory=dict)
    sent_ms: dict[str, list[int]] = field(default_factory=dict)  # for the cap

    def offer(self, person: str, key: str, now_ms: int) -> bool:
        """True: send this alert now. False: it waits for the person's window to end."""
        last = self.last_alert_ms.get(person)
        if person not in self.pending and (last is None or now_ms - last >= self.window_ms):
            self.last_alert_ms[person] = now_ms
            return True
        self.pending.setdefault(person, []).append(key)
        self.window_end_ms.setdefault(
            person, (last if last is not None else now_ms) + self.window_ms
        )
        return False

    def due(self, now_ms: int) -> list[tuple[str, list[str]]]:
        """Windows that have ended: (person, alert keys) to send as one message each."""
        out = []
        for person in sorted(p for p, end in self.window_end_ms.items() if end <= now_ms):
            keys = self.pending.pop(person, [])
            del self.window_end_ms[person]
            if keys:
                self.last_alert_ms[person] = now_ms
                out.append((person, keys))
        return out

    def discard(self, key: str) -> None:
        """The incident closed before its grouped message left: drop it from every window."""
        for keys in self.pending.values():
            while key in keys:
                keys.remove(key)

    def allow(self, person: str, now_ms: int) -> bool:
        """Record one message to ``person``; False when the cap for the window is reached."""
        recent = [t for t in self.sent_ms.get(person, []) if now_ms - t < self.cap_window_ms]
        if len(recent) >= self.cap:
            self.sent_ms[person] = recent
            return False
        recent.append(now_ms)
        self.sent_ms[person] = recent
        return True

    def snapshot(self) -> dict[str, object]:
        return {
            "last_alert_ms": dict(self.last_alert_ms),
            "pending": {k: list(v) for k, v in self.pending.items()},
            "window_end_ms": dict(self.window_end_ms),
            "sent_ms": {k: list(v) for k, v in self.sent_ms.items()},
        }

    def restore(self, data: dict) -> None:
        self.last_alert_ms = {str(k): int(v) for k, v in data.get("last_alert_ms", {}).items()}
        self.pending = {str(k): [str(x) for x in v] for k, v in data.get("pending", {}).items()}
        self.window_end_ms = {str(k): int(v) for k, v in data.get("window_end_ms", {}).items()}
        self.sent_ms = {str(k): [int(x) for x in v] for k, v in data.get("sent_ms", {}).items()}
