"""Letterbox geometry, box mapping, DICOM decoding and decode errors."""

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from crrg_clip.data.cache import build_cache
from crrg_clip.data.images import (
    ImageDecodeError, check_jpeg, letterbox_geometry, load_dicom, load_jpeg_letterbox, map_boxes,
)


def write_jpeg(path: Path, array: np.ndarray, quality=95) -> Path:
    Image.fromarray(array).save(path, quality=quality)
    return path


def test_letterbox_geometry_portrait_and_landscape():
    g = letterbox_geometry(2544, 3056, 512)
    assert (g.new_width, g.new_height) == (426, 512) and (g.pad_x, g.pad_y) == (43, 0)
    assert g.scale == pytest.approx(512 / 3056)
    g = letterbox_geometry(300, 100, 120)
    assert (g.new_width, g.new_height, g.pad_x, g.pad_y) == (120, 40, 0, 40)


def test_box_mapping_follows_the_pixels(tmp_path: Path):
    # A white rectangle on black: its mapped box must land on the white pixels of the cache.
    h, w = 300, 200
    array = np.zeros((h, w), dtype=np.uint8)
    array[60:180, 40:120] = 255
    path = write_jpeg(tmp_path / "a.jpg", array)
    for draft in (False, True):
        canvas, g = load_jpeg_letterbox(path, 150, draft=draft)
        assert canvas.shape == (150, 150) and canvas.dtype == np.uint8
        x1, y1, x2, y2 = map_boxes(np.array([40, 60, 120, 180]), g.scale, g.pad_x, g.pad_y)
        assert (x1, y1, x2, y2) == pytest.approx((25 + 20, 30, 25 + 60, 90))
        inside = canvas[int(y1) + 2:int(y2) - 2, int(x1) + 2:int(x2) - 2]
        assert inside.min() > 200
        assert canvas[:, :g.pad_x].max() == 0 and canvas[:, g.pad_x + g.new_width:].max() == 0
    nan_box = map_boxes(np.array([[np.nan] * 4]), 0.5, 3, 4)
    assert np.isnan(nan_box).all()


def test_draft_decode_is_close_to_full_decode(tmp_path: Path):
    rng = np.random.default_rng(0)
    smooth = (np.add.outer(np.arange(1600), np.arange(1200)) / 2800 * 255).astype(np.uint8)
    array = np.clip(smooth + rng.integers(0, 8, smooth.shape), 0, 255).astype(np.uint8)
    path = write_jpeg(tmp_path / "big.jpg", array, quality=90)
    full, g1 = load_jpeg_letterbox(path, 128, draft=False)
    fast, g2 = load_jpeg_letterbox(path, 128, draft=True)
    assert g1 == g2 and g1.width == 1200 and g1.height == 1600
    assert np.abs(full.astype(int) - fast.astype(int)).mean() < 3


def test_truncated_jpeg_raises_naming_the_file(tmp_path: Path):
    rng = np.random.default_rng(1)
    path = write_jpeg(tmp_path / "broken.jpg", rng.integers(0, 255, (400, 300), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        check_jpeg(path)
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_jpeg_letterbox(path, 64)
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        build_cache([path], tmp_path / "c.npy", 64)


def make_dicom(path: Path, array: np.ndarray, photometric="MONOCHROME2", jpeg=False, window=None, bits=8):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.PixelData = array.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def gradient(h=64, w=48):
    return np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))


def test_monochrome1_is_inverted(tmp_path: Path):
    array = gradient()
    mono2 = load_dicom(make_dicom(tmp_path / "m2.dcm", array))
    mono1 = load_dicom(make_dicom(tmp_path / "m1.dcm", array, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(mono2, array)
    np.testing.assert_array_equal(mono1, 255 - array)


def test_jpeg_baseline_dicom_decodes(tmp_path: Path):
    array = gradient(128, 96)
    path = make_dicom(tmp_path / "rsna.dcm", array, jpeg=True)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    decoded = load_dicom(path)
    assert decoded.shape == (128, 96) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - array.astype(int)).mean() < 3


def test_windowing_applied_for_16_bit(tmp_path: Path):
    array = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (8, 1))
    path = make_dicom(tmp_path / "w.dcm", array, window=(1000, 400), bits=12)
    decoded = load_dicom(path)
    below = array[0] < 800
    above = array[0] > 1200
    assert decoded[0, below].max() == 0 and decoded[0, above].min() == 255


def test_not_a_dicom_raises_naming_the_file(tmp_path: Path):
    bad = tmp_path / "junk.dcm"
    bad.write_bytes(b"this is not dicom")
    with pytest.raises(ImageDecodeError, match="junk.dcm"):
        load_dicom(bad)


def test_cache_pool_matches_serial(tmp_path: Path):
    rng = np.random.default_rng(2)
    paths = [write_jpeg(tmp_path / f"{i}.jpg", rng.integers(0, 255, (90 + i, 70), dtype=np.uint8)) for i in range(6)]
    g1 = build_cache(paths, tmp_path / "a.npy", 32, workers=1)
    g2 = build_cache(paths, tmp_path / "b.npy", 32, workers=2, chunksize=1)
    assert g1.equals(g2)
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (6, 32, 32) and np.array_equal(a, b) and a.max() > 0
