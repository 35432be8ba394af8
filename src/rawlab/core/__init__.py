"""Shared types: the frame, its metadata, params and the stage registry."""

from rawlab.core.frame import Encoding, Frame, Primaries, StageRecord, Transfer
from rawlab.core.metadata import (
    CaptureInfo,
    CfaPattern,
    ColorCalibration,
    LensInfo,
    SensorInfo,
)
from rawlab.core.opcodes import Opcode
from rawlab.core.params import Params, param
from rawlab.core.stage import StageSpec, get_stage, registered_stages, stage

__all__ = [
    "CaptureInfo",
    "CfaPattern",
    "ColorCalibration",
    "Encoding",
    "Frame",
    "LensInfo",
    "Opcode",
    "Params",
    "Primaries",
    "SensorInfo",
    "StageRecord",
    "StageSpec",
    "Transfer",
    "get_stage",
    "param",
    "registered_stages",
    "stage",
]
