"""Optional acoustic check: a microphone near a loudspeaker cluster vs. the line feed."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AcousticConfig(BaseModel):
    """``[acoustic]``: microphone that confirms a loudspeaker cluster actually sounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="run the acoustic check (needs a microphone)")
    pcm_path: str | None = Field(
        None, description="raw s16le file or FIFO with the microphone's samples"
    )
    pcm_command: str | None = Field(
        None, description="command writing the microphone's raw s16le samples to stdout"
    )
    sample_rate: Annotated[int, Field(ge=1000, le=192_000)] = Field(
        16000, description="samples per second of the microphone input (Hz)"
    )
    max_delay_ms: Annotated[float, Field(ge=0, le=2000)] = Field(
        300.0, description="largest acoustic delay searched by cross-correlation (ms)"
    )
    min_level_dbfs: Annotated[float, Field(ge=-120, le=0)] = Field(
        -45.0, description="microphone RMS below this while the feed plays means no sound (dBFS)"
    )
    min_correlation: Annotated[float, Field(ge=0, le=1)] = Field(
        0.3, description="peak normalised correlation with the feed needed to confirm (0..1)"
    )

    @model_validator(mode="after")
    def _input_given(self) -> AcousticConfig:
        if self.enabled and not (self.pcm_path or self.pcm_command):
            raise ValueError("enabled = true needs pcm_path or pcm_command")
        if self.pcm_path and self.pcm_command:
            raise ValueError("give pcm_path or pcm_command, not both")
        return self
