"""Serial link to the station's controller MCU (protocol: firmware_protocol/SPEC.md, v1).

Configuration model only for now; ``ControllerLink`` follows once the codec lands.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ControllerConfig(BaseModel):
    """``[controller]``: where and how to reach the controller MCU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        description="pyserial URL: /dev/ttyUSB0, rfc2217://host:port, or a pty path",
    )
    baudrate: Annotated[int, Field(gt=0, le=4_000_000)] = Field(
        115200, description="UART speed (8N1); 9600 on radio modems"
    )
    address: Annotated[int, Field(ge=1, le=0xFFFE)] = Field(
        1, description="device address of the controller on the line (1..65534)"
    )
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="seconds between POLL TELEMETRY requests"
    )
    response_timeout_ms: Annotated[int, Field(ge=10, le=10_000)] = Field(
        250, description="how long to wait for a response before retrying (ms)"
    )
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        3, description="retries of a request after the first attempt before giving up"
    )
    reopen_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="seconds between attempts to reopen a port that vanished"
    )
    time_sync_interval_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        3600.0, description="seconds between TIME_SYNC messages (also sent at start and reconnect)"
    )
