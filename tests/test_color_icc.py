"""ICC profiles: parsed by littlecms (through Pillow and directly) and checked
against colour-science's own RGB -> XYZ (Bradford) -> Lab D50 conversion."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms

from rawlab.color.icc import icc_profile
from rawlab.core.frame import Primaries, Transfer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

COLOURSPACE = {
    Primaries.SRGB: "sRGB",
    Primaries.DISPLAY_P3: "Display P3",
    Primaries.REC2020: "ITU-R BT.2020",
    Primaries.PROPHOTO: "ProPhoto RGB",
}
XYZ_D50_ICC = np.array([0.9642, 1.0, 0.8249])
ALL = [(p, t) for p in Primaries for t in Transfer]


def _rgb_samples() -> np.ndarray:
    """A grid of RGB values in 0..1 plus random ones (seeded)."""
    levels = np.linspace(0.0, 1.0, 6)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(1)
    return np.concatenate([grid, rng.random((100, 3))])


def _lab_reference(rgb: np.ndarray, primaries: Primaries, transfer: Transfer) -> np.ndarray:
    """colour-science: decode the curve, RGB -> XYZ adapted to D50 (Bradford), -> Lab D50."""
    space = colour.RGB_COLOURSPACES[COLOURSPACE[primaries]]
    linear = colour.models.eotf_sRGB(rgb) if transfer is Transfer.SRGB else rgb
    xy_d50 = colour.XYZ_to_xy(XYZ_D50_ICC)
    XYZ = colour.RGB_to_XYZ(
        linear, space, illuminant=xy_d50, chromatic_adaptation_transform="Bradford", apply_cctf_decoding=False
    )
    return colour.XYZ_to_Lab(XYZ, xy_d50)


def _lab_pillow8(profile: bytes | ImageCms.ImageCmsProfile, rgb8: np.ndarray) -> np.ndarray:
    """littlecms through Pillow: 8-bit RGB -> 8-bit Lab D50, returned in Lab units."""
    source = (
        profile
        if isinstance(profile, ImageCms.ImageCmsProfile)
        else ImageCms.ImageCmsProfile(io.BytesIO(profile))
    )
    lab_profile = ImageCms.createProfile("LAB")
    transform = ImageCms.buildTransform(source, lab_profile, "RGB", "LAB")
    image = Image.fromarray(rgb8.reshape(1, -1, 3).astype(np.uint8), "RGB")
    lab8 = np.asarray(ImageCms.applyTransform(image, transform)).reshape(-1, 3)
    ab = lab8[:, 1:].view(np.int8).astype(np.float64)  # Pillow's LAB mode stores a, b as int8
    return np.concatenate([lab8[:, :1] * (100.0 / 255.0), ab], -1)


def _lcms() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("lcms2")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.cmsOpenProfileFromMem.restype = ctypes.c_void_p
    lib.cmsOpenProfileFromMem.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    lib.cmsCreateLab4Profile.restype = ctypes.c_void_p
    lib.cmsCreateLab4Profile.argtypes = [ctypes.c_void_p]
    lib.cmsCreateTransform.restype = ctypes.c_void_p
    lib.cmsCreateTransform.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
    ]
    lib.cmsDoTransform.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    lib.cmsDeleteTransform.argtypes = [ctypes.c_void_p]
    lib.cmsCloseProfile.argtypes = [ctypes.c_void_p]
    return lib


def _lab_lcms_float(lib: ctypes.CDLL, profile: bytes, rgb: np.ndarray) -> np.ndarray:
    """littlecms in double precision (TYPE_RGB_DBL -> TYPE_Lab_DBL), no optimisation."""
    type_rgb_dbl = (1 << 22) | (4 << 16) | (3 << 3)  # FLOAT_SH(1)|COLORSPACE_SH(PT_RGB)|CHANNELS_SH(3)
    type_lab_dbl = (1 << 22) | (10 << 16) | (3 << 3)  # PT_Lab = 10
    source = lib.cmsOpenProfileFromMem(profile, len(profile))
    assert source, "littlecms refused the profile"
    lab = lib.cmsCreateLab4Profile(None)
    transform = lib.cmsCreateTransform(source, type_rgb_dbl, lab, type_lab_dbl, 1, 0x0100 | 0x0040)
    assert transform
    rgb = np.ascontiguousarray(rgb, dtype=np.float64)
    out = np.empty_like(rgb)
    lib.cmsDoTransform(transform, rgb.ctypes.data, out.ctypes.data, len(rgb))
    lib.cmsDeleteTransform(transform)
    lib.cmsCloseProfile(source)
    lib.cmsCloseProfile(lab)
    return out


@pytest.mark.parametrize(("primaries", "transfer"), ALL)
def test_profile_structure(primaries: Primaries, transfer: Transfer) -> None:
    profile = icc_profile(primaries, transfer=transfer)
    (size,) = struct.unpack(">I", profile[:4])
    assert size == len(profile) and size % 4 == 0
    assert profile[8:12] == b"\x04\x30\x00\x00" and profile[12:24] == b"mntrRGB XYZ "
    assert profile[36:40] == b"acsp"
    zeroed = bytearray(profile)
    zeroed[44:48] = zeroed[64:68] = b"\0" * 4
    zeroed[84:100] = b"\0" * 16
    assert hashlib.md5(bytes(zeroed)).digest() == profile[84:100]
    (count,) = struct.unpack(">I", profile[128:132])
    tags = {profile[132 + 12 * i : 136 + 12 * i] for i in range(count)}
    assert tags == {b"desc", b"cprt", b"wtpt", b"chad", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"}
    parsed = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    assert parsed.profile.version == pytest.approx(4.3)
    assert ImageCms.getProfileDescription(parsed).startswith("rawlab ")
    np.testing.assert_allclose(parsed.profile.media_white_point[0], XYZ_D50_ICC, atol=1e-4)
    # deterministic bytes
    icc_profile.cache_clear()
    assert icc_profile(primaries, transfer=transfer) == profile


@pytest.mark.parametrize(("primaries", "transfer"), ALL)
def test_colorants_sum_to_d50(primaries: Primaries, transfer: Transfer) -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(primaries, transfer=transfer))).profile
    colorants = np.array([profile.red_colorant[0], profile.green_colorant[0], profile.blue_colorant[0]])
    np.testing.assert_allclose(colorants.sum(0), XYZ_D50_ICC, atol=1.0 / 65536)
    # chromaticities of the (D50-adapted) red primary are plausible and distinct per space
    assert colorants[0, 0] > colorants[0, 1]


@pytest.mark.parametrize(("primaries", "transfer"), ALL)
def test_lcms_float_matches_colour_science(primaries: Primaries, transfer: Transfer) -> None:
    lib = _lcms()
    if lib is None:
        pytest.skip("liblcms2 shared library not found")
    rgb = _rgb_samples()
    lab_lcms = _lab_lcms_float(lib, icc_profile(primaries, transfer=transfer), rgb)
    lab_ref = _lab_reference(rgb, primaries, transfer)
    delta_e = colour.delta_E(lab_lcms, lab_ref, method="CIE 2000")
    assert delta_e.mean() < 0.01, delta_e.mean()
    assert delta_e.max() < 0.05, delta_e.max()
    # white is exactly the PCS white
    np.testing.assert_allclose(lab_lcms[np.all(rgb == 1.0, axis=1)][0], [100.0, 0.0, 0.0], atol=2e-3)


@pytest.mark.parametrize("primaries", list(Primaries))
def test_pillow_8bit_transform_matches_colour_science(primaries: Primaries) -> None:
    """Through Pillow the Lab output is 8-bit (L step 0.39, a/b step 1), so compare
    with the reference quantised the same way: within one code value everywhere and
    mean Delta E 2000 of the quantised values well under the quantisation step."""
    rgb8 = np.round(_rgb_samples() * 255.0)
    lab_pillow = _lab_pillow8(icc_profile(primaries), rgb8)
    lab_ref = _lab_reference(rgb8 / 255.0, primaries, Transfer.SRGB)
    inside = np.all(np.abs(lab_ref[:, 1:]) < 127, axis=1)  # 8-bit Lab a/b saturate at -128..127
    assert inside.mean() > 0.6
    lab_ref_q = np.stack(
        [np.round(lab_ref[:, 0] * 2.55) / 2.55, np.round(lab_ref[:, 1]), np.round(lab_ref[:, 2])], -1
    )
    assert np.abs(lab_pillow - lab_ref_q)[inside].max() <= 1.0 + 1e-9
    delta_e = colour.delta_E(lab_pillow[inside], lab_ref_q[inside], method="CIE 2000")
    assert delta_e.mean() < 0.1, delta_e.mean()


def test_srgb_agrees_with_pillow_builtin_srgb() -> None:
    rgb8 = np.round(_rgb_samples() * 255.0)
    ours = _lab_pillow8(icc_profile(Primaries.SRGB), rgb8)
    builtin = _lab_pillow8(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")), rgb8)
    difference = np.abs(ours - builtin)
    assert difference.max() <= 1.0 + 1e-9
    assert (difference > 0).mean() < 0.1


def test_spaces_differ() -> None:
    """Saturated red lands at different Lab values per space (a wrong table would not)."""
    lib = _lcms()
    if lib is None:
        pytest.skip("liblcms2 shared library not found")
    red = np.array([[1.0, 0.0, 0.0]])
    chroma = {p: np.hypot(*_lab_lcms_float(lib, icc_profile(p), red)[0, 1:]) for p in Primaries}
    assert chroma[Primaries.SRGB] < chroma[Primaries.DISPLAY_P3] < chroma[Primaries.REC2020]


def test_rejects_non_enum() -> None:
    with pytest.raises(TypeError):
        icc_profile("srgb")  # type: ignore[arg-type]
