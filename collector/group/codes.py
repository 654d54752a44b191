"""Acknowledgement codes of a group partition: partition k's codes are ``<k + 1><3 digits>``.

Every partition's ops session receives every ``loaxa ack CODE`` (topic
``loaxa/v1/<province>/_ops/ack/_any/<code>``), and each partition's router numbers its alerts
100, 101, ... on its own: unprefixed, ``loaxa ack 100`` would acknowledge one alert in every
partition. With the prefix (``4100`` is partition 3's alert 100) a code names one alert in the
whole group; ``loaxa ack`` takes up to 6 digits and the SMS reply parser any number of digits.
The 3-digit part is the router's own sequence (100-999), kept in its saved state.
"""

from __future__ import annotations

from collector.alerts.router import AlertRouter


def prefix_codes(router: AlertRouter, k: int) -> None:
    """Make ``router`` hand out partition k's codes (replaces its ``_new_code``)."""
    prefix = str(k + 1)

    def new_code() -> str:
        used = {a.code for a in router.alerts.values()}
        for _ in range(900):
            n = router._next_code
            router._next_code = 100 + (n - 99) % 900
            code = f"{prefix}{n}"
            if code not in used:
                return code
        raise RuntimeError(f"partition {k}: more than 900 open alerts, no code left")

    router._new_code = new_code  # type: ignore[method-assign]
