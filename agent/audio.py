"""Audio levels from PCM samples (numpy): RMS and peak in dBFS, clipping ratio, silence flag."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AudioConfig(BaseModel):
    """``[audio]``: where the audio level comes from and how silence is judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["mcu", "pcm"] = Field(
        "mcu", description='"mcu": level reported by the controller; "pcm": measured from samples'
    )
    pcm_path: str | None = Field(
        None, description="raw s16le or WAV file, or a FIFO, to read samples from (source=pcm)"
    )
    pcm_command: str | None = Field(
        None,
        description='command writing raw s16le to stdout, e.g. "arecord -q -t raw -f S16_LE '
        '-r 16000 -c 1" (source=pcm)',
    )
    sample_rate: Annotated[int, Field(ge=1000, le=192_000)] = Field(
        16000, description="samples per second of the PCM input (Hz)"
    )
    channels: Annotated[int, Field(ge=1, le=8)] = Field(
        1, description="interleaved channels in the PCM input; levels use all of them"
    )
    window_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="length of the window the levels are computed over (s)"
    )
    silence_threshold_dbfs: Annotated[float, Field(ge=-120, le=0)] = Field(
        -50.0, description="RMS below this counts as silence (dBFS)"
    )
    silence_hold_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        30.0, description="silence must last this long before the silent flag is set (s)"
    )
    clip_level_dbfs: Annotated[float, Field(ge=-20, le=0)] = Field(
        -0.1, description="samples at or above this magnitude count as clipped (dBFS)"
    )

    @model_validator(mode="after")
    def _pcm_input_given(self) -> AudioConfig:
        if self.source == "pcm" and not (self.pcm_path or self.pcm_command):
            raise ValueError('source = "pcm" needs pcm_path or pcm_command')
        if self.pcm_path and self.pcm_command:
            raise ValueError("give pcm_path or pcm_command, not both")
        return self
