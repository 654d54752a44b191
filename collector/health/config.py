"""Health engine settings ([health] in the collector TOML). Per-station thresholds live in the
inventory (``[defaults]``, commune and station overrides); these are engine-wide choices."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backfill_settle_s: Annotated[
        int,
        Field(ge=0, description="after a reconnect, wait this long for backfill before judging"),
    ] = 120
    flap_hold_s: Annotated[
        int,
        Field(ge=0, description="while flapping, a drop must last this long to open an incident"),
    ] = 600
    battery_cutoff_v: Annotated[
        float, Field(gt=0, description="voltage at which the station's battery is flat")
    ] = 10.5
    battery_fit_points: Annotated[
        int, Field(ge=2, description="readings in the linear fit of the battery voltage")
    ] = 10
    battery_warning_min: Annotated[
        float, Field(gt=0, description="warn when the estimated time left falls below this")
    ] = 30
    upstream_quorum: Annotated[
        float, Field(gt=0, le=1, description="share of an upstream's stations down = it failed")
    ] = 0.75
    upstream_min_children: Annotated[
        int, Field(ge=1, description="infer an upstream failure only with this many stations")
    ] = 2
    dedupe_keys: Annotated[
        int, Field(ge=10, description="(session, seq) keys remembered per station")
    ] = 2000
    history_days: Annotated[
        int, Field(ge=1, description="transitions kept in memory (stored ones are kept forever)")
    ] = 40
    max_clock_skew_s: Annotated[
        int, Field(ge=0, description="readings stamped further ahead of arrival use arrival")
    ] = 300
    upstream_window_s: Annotated[
        int, Field(ge=0, description="stations dropping within this span count as 'at once'")
    ] = 300
