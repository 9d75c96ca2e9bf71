"""One decoding pass for every featurizer of a run: same values as separate runs, each image read once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_busi

from featurekit.data import load_dataset, sources
from featurekit.errors import DataError, FeaturekitError
from featurekit.extraction.decode import _cut, plan_cells
from featurekit.extraction.pipeline import extract
from featurekit.handcrafted import GLCMFeatures

LAYERS = ["mobilenet_v2:1-3", "resnet18:pool1,conv2_block1_out"]
FAMILIES = ["gabor", "glcm", "haar"]
KW = {"weights": "none", "size": 32, "batch_size": 4, "progress": False}


@pytest.fixture
def busi_copy6(busi_dir, tmp_path):
    """3 benign + 3 malignant BUSI images with masks, the tumour region of interest (small crops, fast)."""
    copy_busi(busi_dir, tmp_path / "busi", {"benign": [1, 2, 3], "malignant": [1, 2, 3]})
    return tmp_path / "busi"


def _load(root, **kw):
    return load_dataset(root, classes=["benign", "malignant"], roi="mask", **kw)


def _separately(ds, folder, **kw) -> dict:
    """Every entry from runs of one featurizer each (their own caches): key -> (cache, entry id)."""
    out = {}
    runs = [([layer], []) for layer in LAYERS] + [([], [family]) for family in FAMILIES]
    for k, (layers, hand) in enumerate(runs):
        result = extract(ds, layers, hand, cache=folder / f"alone{k}.h5", num_workers=0, **KW, **kw)
        out.update({s.key: (result.cache, s.entry_id) for s in result.specs})
    return out


def _assert_same(result, alone: dict) -> None:
    """Every entry of ``result`` equals the separate run's, bit for bit, on the rows ``result`` holds."""
    keys = {s.key for s in result.specs}
    assert keys == set(alone) and len(keys) == 3 + 2 + 3
    ids = result.cache.ids
    for s in result.specs:
        cache, entry_id = alone[s.key]
        np.testing.assert_array_equal(result.cache.get(s.key, entry_id=s.entry_id, ids=ids),
                                      cache.get(s.key, entry_id=entry_id, ids=ids), err_msg=s.key)


def test_one_pass_equals_separate_runs_bit_for_bit(busi_copy6, tmp_path):
    ds = _load(busi_copy6)
    alone = _separately(ds, tmp_path)
    # decoding and the CNN preprocessing in a DataLoader worker process, the features here
    together = extract(ds, LAYERS, FAMILIES, cache=tmp_path / "together.h5", num_workers=1, **KW)
    assert len(together.computed) == 8 and together.cache.ids == ds.ids
    _assert_same(together, alone)


def test_featurizers_missing_different_rows_get_their_own_rows(busi_copy6, tmp_path):
    """GLCM rows of the first 3 images come from a sibling cache: the pass decodes the union, GLCM gets the rest."""
    ds = _load(busi_copy6)
    extract(ds.subset([0, 1, 2]), [], ["glcm"], cache=tmp_path / "first.h5", num_workers=0, **KW)
    alone = _separately(ds, tmp_path / "alone")
    asked = Counter()
    original = GLCMFeatures.featurize

    def spy(self, images, masks=None):
        asked["rows"] += len(images)
        return original(self, images, masks)

    GLCMFeatures.featurize = spy
    try:
        together = extract(ds, LAYERS, FAMILIES, cache=tmp_path / "together.h5", num_workers=0, **KW)
    finally:
        GLCMFeatures.featurize = original
    assert together.reused_rows == 3 and asked["rows"] == 3
    _assert_same(together, alone)


def test_each_image_and_mask_is_decoded_once(busi_copy6, tmp_path, monkeypatch):
    ds = _load(busi_copy6)
    images, masks = Counter(), Counter()
    read_image, read_mask = sources.read_image, sources.read_mask
    monkeypatch.setattr(sources, "read_image", lambda p: (images.update([p]), read_image(p))[1])
    monkeypatch.setattr(sources, "read_mask", lambda p: (masks.update([p]), read_mask(p))[1])
    extract(ds, LAYERS, FAMILIES, cache=tmp_path / "c.h5", num_workers=0, **KW)
    assert len(images) == len(ds) and set(images.values()) == {1}
    assert len(masks) == len(ds) and set(masks.values()) == {1}


def test_an_unreadable_image_stops_the_run_naming_it(busi_copy6, tmp_path):
    bad = busi_copy6 / "malignant" / "malignant (2).png"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated PNG
    with pytest.raises(DataError, match=r"malignant \(2\)\.png"):
        extract(_load(busi_copy6), LAYERS, FAMILIES, cache=tmp_path / "c.h5", num_workers=1, **KW)


@pytest.mark.parametrize("why", ["decoding", "features"])
def test_on_error_skip_leaves_out_just_the_bad_image_for_every_featurizer(busi_copy6, tmp_path, monkeypatch, why):
    ds = _load(busi_copy6)
    bad = "malignant/malignant (1)"
    row = ds.ids.index(bad)
    if why == "decoding":
        path = busi_copy6 / "malignant" / "malignant (1).png"
        path.write_bytes(path.read_bytes()[:300])
        ds = _load(busi_copy6)  # a dataset memoises its content hashes
    else:  # GLCM fails on that image only (in a batch of four, then alone)
        shape = ds.image(row).shape
        original = GLCMFeatures.featurize

        def failing(self, images, masks=None):
            if any(img.shape == shape for img in images):
                raise FeaturekitError("image 0: no texture here")
            return original(self, images, masks)

        monkeypatch.setattr(GLCMFeatures, "featurize", failing)
    good = [i for i in ds.ids if i != bad]
    alone = _separately(ds, tmp_path / "alone", on_error="skip")  # each redoes the failing batch image by image
    together = extract(ds, LAYERS, FAMILIES, cache=tmp_path / "c.h5", num_workers=1, on_error="skip", **KW)
    assert list(together.skipped) == [bad]
    assert "malignant (1).png" in together.skipped[bad]
    assert why == "decoding" or "no texture" in together.skipped[bad]
    assert together.cache.ids == good
    _assert_same(together, alone)


def test_plan_cells_groups_each_featurizers_batches_by_grid_cell():
    cells = plan_cells([[(0, 4), (4, 6)], [(1, 3), (6, 8)], []], 4, [False, True, True])
    assert [c.rows for c in cells] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert [c.batches for c in cells] == [(((0, 4),), ((1, 3),), ()), (((4, 6),), ((6, 8),), ())]
    assert [c.keep for c in cells] == [(1, 2), (6, 7)]
    with pytest.raises(ValueError, match="crosses the grid"):
        plan_cells([[(2, 6)]], 4, [False])
    # a featurizer after one that skipped rows 2 and 5 gets the runs around them (as writer.plan would cut them)
    assert _cut(0, 6, {2, 5}) == [(0, 2), (3, 5)] and _cut(4, 8, set()) == [(4, 8)] and _cut(0, 1, {0}) == []


# ---------------------------------------------------------------------------- what is decoded is what was hashed
def _invert(path):
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im)
    Image.fromarray(255 - pixels).save(path)


def _glcm_rows(root, cache, **kw):
    from featurekit.cache import FeatureCache

    result = extract(load_dataset(root), [], ["glcm"], cache=cache, batch_size=4, progress=False, **kw)
    (spec,) = result.specs
    return FeatureCache(cache).get(spec.key, entry_id=spec.entry_id), result


def test_a_file_changed_between_its_hash_and_its_decode_is_decoded_as_hashed(tmp_path, monkeypatch):
    """The file is rewritten after its bytes are hashed, just before the decoder opens it: the row stored under
    the original content's hash is the original content's row."""
    from _cache_helpers import write_images

    paths = write_images(tmp_path / "data", n=6)
    reference, _ = _glcm_rows(tmp_path / "data", tmp_path / "ref" / "ref.h5")
    target, read_image = paths[3], sources.read_image

    def rewritten_first(path, *args):
        if Path(path).name == target.name and not rewritten_first.done:
            _invert(target)  # same size, other pixels: on disk from now on
            rewritten_first.done = True
        return read_image(path, *args)

    rewritten_first.done = False
    monkeypatch.setattr(sources, "read_image", rewritten_first)
    ds = load_dataset(tmp_path / "data")
    hashes = ds.sample_hashes()  # taken before the file changes
    values, _ = _glcm_rows(tmp_path / "data", tmp_path / "c.h5")
    assert rewritten_first.done
    np.testing.assert_array_equal(values, reference)
    from featurekit.cache import FeatureCache

    assert FeatureCache(tmp_path / "c.h5").row_hashes == hashes


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_file_changed_during_a_run_then_restored_is_recomputed_not_served_wrong(tmp_path, monkeypatch, on_error):
    from _cache_helpers import write_images

    from featurekit.cache.writer import CacheWriter
    from featurekit.errors import DataChangedError

    paths = write_images(tmp_path / "data", n=12)
    reference, _ = _glcm_rows(tmp_path / "data", tmp_path / "ref" / "ref.h5")
    target, original = paths[9], paths[9].read_bytes()
    plan = CacheWriter.plan

    def plan_then_rewrite(self, *args, **kwargs):  # after the run took its content hashes, before any decode
        _invert(target)
        return plan(self, *args, **kwargs)

    monkeypatch.setattr(CacheWriter, "plan", plan_then_rewrite)
    with pytest.raises(DataChangedError, match=rf"{target.name}: the file changed while featurekit was reading it"):
        _glcm_rows(tmp_path / "data", tmp_path / "c.h5", on_error=on_error)
    monkeypatch.setattr(CacheWriter, "plan", plan)
    target.write_bytes(original)  # restored
    values, result = _glcm_rows(tmp_path / "data", tmp_path / "c.h5", on_error=on_error)
    np.testing.assert_array_equal(values, reference)
    assert result.computed and not result.skipped
