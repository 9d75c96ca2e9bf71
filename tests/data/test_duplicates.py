"""Near-duplicate grouping: copies share a group, grouped CV never splits them."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize

from featurekit.cli import main
from featurekit.data import Dataset, group_near_duplicates, load_dataset, make_phantom
from featurekit.data.duplicates import connected_groups, dhash
from featurekit.data.sources import ArrayImages
from featurekit.evaluation.folds.protocols import parse_cv


def _with_copies():
    """12 distinct phantom images + 3 altered copies: noisy, brighter, JPEG re-encoded with 2 rows trimmed."""
    base = make_phantom(n_per_class=6, size=96, seed=3)
    images = [base.image(i).astype(np.float64) for i in range(len(base))]
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(base.image(8)[2:]).save(buffer, "JPEG", quality=75)
    trimmed = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64)
    copies = [
        images[0] + rng.normal(0, 3, images[0].shape),
        images[5] * 1.2 + 10,
        resize(trimmed, (96, 96), preserve_range=True),
    ]
    stack = np.clip(np.stack(images + copies), 0, 255).astype(np.uint8)
    labels = list(base.labels) + [base.labels[0], base.labels[5], base.labels[8]]
    ids = base.ids + ["copy_of_0", "copy_of_5", "copy_of_8"]
    return Dataset(ids, labels, base.class_names, ArrayImages([stack]), positive="malignant",
                   groups=[f"p{i}" for i in range(len(ids))])


def test_copies_share_a_group_and_distinct_images_do_not():
    ds = group_near_duplicates(_with_copies())
    g = ds.groups
    assert g[12] == g[0] and g[13] == g[5] and g[14] == g[8]
    assert len(set(g[:12])) == 12  # the 12 distinct images stay apart


def test_existing_groups_are_merged_not_lost():
    ds = _with_copies()
    ds = ds.with_groups(["patientA", "patientA"] + [f"p{i}" for i in range(2, len(ds))])
    g = group_near_duplicates(ds).groups
    assert g[0] == g[1] == g[12]  # same patient, and 12 is a copy of 0


def test_dhash_is_invariant_to_intensity_scaling():
    img = make_phantom(n_per_class=1, size=64).image(0)
    assert (dhash(img) == dhash((img.astype(np.uint16) * 257))).all()


def test_connected_groups_is_transitive():
    adj = np.zeros((5, 5), bool)
    adj[0, 3] = adj[3, 0] = adj[3, 4] = adj[4, 3] = True
    comp = connected_groups(adj)
    assert comp[0] == comp[3] == comp[4] and len({comp[0], comp[1], comp[2]}) == 3


def test_busi_known_copies_are_grouped_and_never_split(busi_dir, tmp_path):
    import shutil

    root = tmp_path / "busi"
    (root / "benign").mkdir(parents=True)
    # benign (4) and benign (321) are the same frame saved twice; (2)/(319) and (6)/(323) likewise
    for k in (2, 4, 6, 100, 200, 319, 321, 323, 250, 260, 270, 280):
        for f in busi_dir.joinpath("benign").glob(f"benign ({k})*.png"):
            shutil.copy(f, root / "benign" / f.name)
    ds = group_near_duplicates(load_dataset(root))
    gid = dict(zip(ds.ids, ds.groups))
    for a, b in ((4, 321), (2, 319), (6, 323)):
        assert gid[f"benign/benign ({a})"] == gid[f"benign/benign ({b})"]
    assert len(set(ds.groups)) == len(ds) - 3
    y = np.arange(len(ds)) % 2
    for train, test in parse_cv("3x2").split(np.zeros((len(ds), 1)), y, ds.groups):
        assert not set(ds.groups[train]) & set(ds.groups[test])


def test_cli_option(tmp_path, capsys):
    assert main(["extract", "phantom", "--group-duplicates", "--layers", "resnet18:pool1", "--weights", "none",
                 "--size", "32", "--cache", str(tmp_path / "c.h5"), "--workers", "0", "--quiet"]) == 0
    with pytest.raises(SystemExit):
        main(["extract", "phantom", "--group-duplicates", "x", "--layers", "resnet18:pool1"])
