"""The data model: frames, CFA patterns, params validation, stage registry."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import numpy as np
import pytest

from rawlab.core import CfaPattern, Encoding, Frame, Params, Primaries, SensorInfo, param, stage
from rawlab.core.stage import get_stage
from rawlab.errors import InvalidParams, StageError


def test_frame_converts_to_float32_and_checks_shape():
    frame = Frame(np.arange(12, dtype=np.uint16).reshape(3, 4), Encoding.CFA)
    assert frame.data.dtype == np.float32 and frame.data.flags.c_contiguous
    with pytest.raises(ValueError, match="2-D"):
        Frame(np.zeros((3, 4, 3)), Encoding.CFA)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Frame(np.zeros((3, 4)), Encoding.CAMERA_RGB)
    with pytest.raises(ValueError, match="primaries"):
        Frame(np.zeros((3, 4, 3)), Encoding.RGB)
    rgb = Frame(np.zeros((3, 4, 3)), Encoding.RGB, primaries=Primaries.SRGB, clip_level=1.0)
    assert rgb.clip_level.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(FrozenInstanceError):
        rgb.encoding = Encoding.CFA  # type: ignore[misc]


@pytest.mark.parametrize("name", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_cfa_pattern_phases(name):
    cfa = CfaPattern.from_string(name)
    assert cfa.name == name and cfa.is_bayer
    index = cfa.color_index_map(5, 7)
    letters = "RGB"
    assert letters[index[0, 0]] == name[0] and letters[index[1, 1]] == name[3]
    assert letters[index[4, 6]] == name[0]  # the pattern repeats
    # cropping one column / row moves the phase the way a crop does
    assert cfa.shifted(0, 1).name == name[1] + name[0] + name[3] + name[2]
    assert cfa.shifted(1, 0).name == name[2:] + name[:2]
    masks = cfa.masks(4, 6)
    assert masks.sum() == 24 and masks[1].sum() == 12


def test_cfa_pattern_rejects_bad_input():
    with pytest.raises(ValueError):
        CfaPattern.from_string("RGGX")
    with pytest.raises(ValueError):
        CfaPattern(((0, 1), (2,)))
    xtrans = CfaPattern(tuple(tuple((x + y) % 3 for x in range(6)) for y in range(6)))
    assert xtrans.shape == (6, 6) and not xtrans.is_bayer


def test_sensor_info_normalises_black_level_shape_and_freezes_arrays():
    info = SensorInfo(black_level_dn=[[1, 2], [3, 4]], white_level_dn=1023)
    assert info.black_level_dn.shape == (2, 2, 1)
    assert info.white_level_dn.tolist() == [1023.0]
    with pytest.raises(ValueError):
        info.black_level_dn[0, 0, 0] = 5


@dataclass(frozen=True)
class _DemoParams(Params):
    VERSION = 3
    radius_px: float = param(1.0, min=0.3, max=10.0, unit="px", doc="radius")
    mode: str = param("fast", choices=("fast", "slow"))
    gains: tuple[float, float, float] = param((1.0, 1.0, 1.0), min=0.0)
    enabled: bool = param(True)


def test_params_validate_types_ranges_and_choices():
    assert _DemoParams(radius_px=2).radius_px == 2.0
    with pytest.raises(InvalidParams, match=r"radius_px: expected a value in \[0.3, 10.0\] px, got 20"):
        _DemoParams(radius_px=20)
    with pytest.raises(InvalidParams, match="expected one of fast, slow"):
        _DemoParams(mode="medium")
    with pytest.raises(InvalidParams, match="expected 3 values"):
        _DemoParams(gains=(1.0, 2.0))
    with pytest.raises(InvalidParams, match="expected true or false"):
        _DemoParams(enabled="yes")
    with pytest.raises(InvalidParams, match="expected a number"):
        _DemoParams(radius_px="big")
    with pytest.raises(InvalidParams, match="recipe.toml: unknown parameter 'radius'"):
        _DemoParams.from_dict({"radius": 1}, source="recipe.toml")


def test_params_hash_changes_with_values_and_version():
    a, b = _DemoParams(), _DemoParams(radius_px=2.0)
    assert a.params_hash() == _DemoParams().params_hash()
    assert a.params_hash() != b.params_hash()
    assert _DemoParams.from_dict(a.to_dict()).params_hash() == a.params_hash()


@dataclass(frozen=True)
class _ScaleParams(Params):
    factor: float = param(2.0, min=0.0)


@stage("test_scale", params=_ScaleParams, consumes=Encoding.CAMERA_RGB, produces=Encoding.XYZ_D50)
def _scale(frame: Frame, p: _ScaleParams) -> Frame:
    return frame.replace(data=frame.data * p.factor, encoding=Encoding.XYZ_D50)


def test_stage_registry_checks_encoding_and_records_history():
    spec = get_stage("test_scale")
    frame = Frame(np.ones((2, 2, 3)), Encoding.CAMERA_RGB)
    out = spec(frame, _ScaleParams(factor=3.0))
    assert np.all(out.data == 3.0) and out.encoding is Encoding.XYZ_D50
    assert out.history[-1].stage == "test_scale" and not out.history[-1].skipped
    # a frame that already is what the stage produces passes through, noted as skipped
    again = spec(out)
    assert again.data is out.data and again.history[-1].skipped
    with pytest.raises(StageError, match="expects a frame encoded as camera_rgb, got cfa"):
        spec(Frame(np.ones((2, 2)), Encoding.CFA))
