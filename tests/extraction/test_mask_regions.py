"""Handcrafted features never describe the lesion in some images and the whole image in others."""
import numpy as np
import pytest
from conftest import copy_busi, random_dataset

from featurekit.data.dataset import Dataset
from featurekit.data.sources import ArrayImages, ArrayMasks
from featurekit.data.spec import DataSpec
from featurekit.errors import DataError
from featurekit.extraction.pipeline import extract


def _with_masks(empty_rows):
    ds = random_dataset(n=8, size=32)
    masks = np.zeros((8, 32, 40), dtype=np.uint8)
    masks[:, 8:24, 10:30] = 1
    masks[list(empty_rows)] = 0
    images = ArrayImages([np.stack([ds.image(i) for i in range(8)])])
    return Dataset(ds.ids, ds.labels, ds.class_names, images, ArrayMasks([masks]), positive="malignant",
                   name="m", source="memory:m")


def test_some_images_without_a_mask_are_refused_before_any_work(tmp_path):
    ds = _with_masks(empty_rows=[1, 3, 5, 7])  # every malignant image without a lesion mask
    with pytest.raises(DataError, match=r"4 of 8 images have no lesion mask .*malignant: 4 of 4.*--no-masks"):
        extract(ds, [], ["glcm"], cache=tmp_path / "c.h5", progress=False)
    assert not (tmp_path / "c.h5").exists()


def test_all_masked_or_none_masked_data_extract(tmp_path):
    for empty in ([], range(8)):
        result = extract(_with_masks(empty), [], ["glcm"], cache=tmp_path / f"c{len(list(empty))}.h5",
                         progress=False)
        assert result.computed


def test_busi_normal_images_need_no_masks_for_handcrafted_features(busi_dir, tmp_path):
    root = copy_busi(busi_dir, tmp_path / "busi", {"benign": [1, 2], "normal": [1, 2]})
    spec = DataSpec(str(root), classes="benign,normal")
    with pytest.raises(DataError, match="normal: 2 of 2"):
        extract(spec.load(), [], ["glcm"], cache=tmp_path / "c.h5", progress=False)
    maskless = DataSpec(str(root), classes="benign,normal", masks=False).load()
    assert not maskless.has_masks
    assert set(maskless.sample_hashes()).isdisjoint(spec.load().sample_hashes())  # never the masked rows
    assert extract(maskless, [], ["glcm"], cache=tmp_path / "c.h5", progress=False).computed
    with pytest.raises(DataError, match="--roi mask crops to the masks, which --no-masks leaves unread"):
        DataSpec(str(root), classes="benign", roi="mask", masks=False)
    with pytest.raises(DataError, match="--slices max-mask chooses planes by the mask volumes"):
        DataSpec(str(root), slices="max-mask", masks=False)
    with pytest.raises(DataError, match=r"roi='mask' \(--roi mask\) crops to the masks"):
        spec.load().with_roi("mask").without_masks()


def test_the_cli_says_no_masks(busi_dir, tmp_path, capsys):
    from featurekit.cli import main

    root = copy_busi(busi_dir, tmp_path / "busi", {"benign": [1, 2], "normal": [1, 2]})
    assert main(["extract", str(root), "--handcrafted", "glcm", "--cache", str(tmp_path / "c.h5"), "--quiet"]) != 0
    assert "--no-masks" in capsys.readouterr().err
    assert main(["extract", str(root), "--handcrafted", "glcm", "--cache", str(tmp_path / "c.h5"), "--quiet",
                 "--no-masks"]) == 0


def test_a_scikit_learn_pipeline_refuses_the_same_data(tmp_path):
    """The rule holds whatever the path: a handcrafted transformer fitted on such a Dataset (through
    ImagesOf in a Pipeline) refuses it too, even with empty_mask='whole'."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from featurekit.data.images_of import ImagesOf
    from featurekit.handcrafted import FirstOrderFeatures

    ds = _with_masks(empty_rows=[1, 3, 5, 7])
    pipe = make_pipeline(ImagesOf(ds), FirstOrderFeatures(empty_mask="whole"), LogisticRegression())
    with pytest.raises(DataError, match="4 of 8 images have no lesion mask.*without_masks"):
        pipe.fit(np.asarray(ds.ids), ds.labels)
    fitted = make_pipeline(ImagesOf(ds.without_masks()), FirstOrderFeatures(), LogisticRegression())
    assert fitted.fit(np.asarray(ds.ids), ds.labels).predict_proba(np.asarray(ds.ids)).shape == (8, 2)
    FirstOrderFeatures().fit(_with_masks(empty_rows=[]))  # every image masked: fine


def test_mask_presence_is_decoded_once_and_kept_by_subsets(monkeypatch):
    ds = _with_masks(empty_rows=[])
    calls = []
    nonempty = type(ds._masks).nonempty
    monkeypatch.setattr(type(ds._masks), "nonempty", lambda self, i: (calls.append(i), nonempty(self, i))[1])
    first = ds.mask_presence()
    assert first.all() and len(calls) == 8
    ds.check_mask_regions()
    sub = ds.subset([5, 1])
    assert sub.mask_presence().tolist() == [True, True] and len(calls) == 8  # nothing decoded again
    assert ds.without_masks().mask_presence() is None
