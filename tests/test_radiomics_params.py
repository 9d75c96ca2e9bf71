"""The family table, the ``radiomics`` group and pyradiomics parameter files, from the command line to the cache."""

import logging

import numpy as np
import pytest
from _busi_crops import busi_crops

from featurekit.errors import DataError, LayerError
from featurekit.handcrafted import FAMILIES, from_spec, read_pyradiomics_params
from featurekit.specs import HANDCRAFTED, HANDCRAFTED_GROUPS, RADIOMICS_CLASSES, HandcraftedSpec, parse_handcrafted

PARAMS = """\
imageType:
  Original: {}
featureClass:
  shape2D:
  firstorder:
  glcm: [Contrast, JointEntropy, Idmn]
setting:
  binWidth: 10
  label: 1
  symmetricalGLCM: true
  voxelArrayShift: 300
"""


def test_the_radiomics_group_is_the_registered_pyradiomics_classes():
    group = HANDCRAFTED_GROUPS["radiomics"]
    assert [c.partition(":")[0] for c in group] == [c.partition(":")[0] for c in RADIOMICS_CLASSES
                                                      if c.partition(":")[0] in FAMILIES]
    assert {"firstorder", "shape", "glcm"} <= {c.partition(":")[0] for c in group}
    assert "lbp" in HANDCRAFTED and "lbp" not in str(group)  # an image filter in pyradiomics, not a class
    specs = parse_handcrafted("radiomics,lbp:radii=1,2,glcm:features=pyradiomics")
    names = [s.family for s in specs]
    assert names == [c.partition(":")[0] for c in group] + ["lbp"]  # the repeated glcm spec is one
    assert specs[names.index("glcm")] == HandcraftedSpec("glcm", (("features", "pyradiomics"),))
    assert specs[-1] == HandcraftedSpec("lbp", (("radii", (1, 2)),))
    for spec in specs:
        assert from_spec(spec).fit().n_features_out_ > 0


def test_group_and_file_spellings_fail_clearly(tmp_path):
    with pytest.raises(LayerError, match="takes no parameters but params=FILE"):
        parse_handcrafted("radiomics:bin_count=8")
    with pytest.raises(LayerError, match="read_pyradiomics_params"):
        parse_handcrafted("radiomics:params=x.yaml")  # the specs layer reads no files itself
    with pytest.raises(LayerError, match="no other parameters"):
        parse_handcrafted("radiomics:params=x.yaml;bin_count=3", read_params=lambda p, f: [])
    with pytest.raises(DataError, match="missing.yaml"):
        read_pyradiomics_params(tmp_path / "missing.yaml")


def test_a_parameter_file_becomes_family_settings(tmp_path):
    path = tmp_path / "Params.yaml"
    path.write_text(PARAMS)
    specs = read_pyradiomics_params(path)
    assert [str(s) for s in specs] == [
        "shape",
        "firstorder:bin_width=10.0;voxel_array_shift=300.0",
        "glcm:bin_width=10.0;features=Contrast,JointEntropy,Idmn;symmetric=true",
    ]
    # the same through the parser with a reader, limited to the named family
    only = parse_handcrafted(f"glcm:params={path},haar", read_params=read_pyradiomics_params)
    assert [s.family for s in only] == ["glcm", "haar"]
    binned = tmp_path / "count.yaml"
    binned.write_text("setting: {binCount: 16, binWidth: 5}\nfeatureClass: {glcm: }\n")
    assert [str(s) for s in read_pyradiomics_params(binned)] == ["glcm:bin_count=16;features=pyradiomics"]


@pytest.mark.parametrize("text, match", [
    ("setting: {resampledPixelSpacing: [1, 1]}\n", "resampling"),
    ("setting: {normalize: true}\n", "normalisation"),
    ("imageType: {LoG: {sigma: [1.0]}}\n", "LoG"),
    ("setting: {binWidht: 5}\n", "binWidht"),
    ("featureClass: {firstorder: [Mean, Mode]}\n", "Mode"),
    ("featureClass: {shape3D: }\n", "shape3D"),
    ("- a list\n", "mapping"),
    ("setting: {binCount: 2.5}\n", "binCount must be an integer"),
])
def test_settings_featurekit_does_not_do_are_errors_naming_the_file(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        read_pyradiomics_params(path)
    assert "bad.yaml" in str(info.value)


def test_a_parameter_file_gives_pyradiomics_extractor_values(busi_dir, tmp_path):
    pytest.importorskip("radiomics")
    import SimpleITK as sitk
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    path = tmp_path / "Params.yaml"
    path.write_text(PARAMS)
    images, masks = busi_crops(busi_dir, names=("benign/benign (2).png", "malignant/malignant (5).png"))
    extractor = featureextractor.RadiomicsFeatureExtractor(str(path))
    for spec in read_pyradiomics_params(path):
        t = from_spec(spec)
        ours = t.featurize(images, masks).astype(np.float64)
        prefix = {"shape": "shape2D"}.get(spec.family, spec.family)
        for i, (img, m) in enumerate(zip(images, masks)):
            res = extractor.execute(sitk.GetImageFromArray(img), sitk.GetImageFromArray(m.astype(np.uint8)))
            for j, name in enumerate(t.get_feature_names_out()):
                feature = name.split("_", 1)[1].rsplit("_d", 1)[0] if spec.family == "glcm" else name.split("_", 1)[1]
                ref = float(res[f"original_{prefix}_{feature}"])
                assert ours[i, j] == pytest.approx(ref, rel=1e-6), (name, i)  # float32 cache values


def test_extract_radiomics_caches_one_entry_per_family(tmp_path, capsys):
    from featurekit.cache import FeatureCache
    from featurekit.cli import main
    from featurekit.data import write_phantom

    data = write_phantom(tmp_path / "data", n_per_class=3, size=48)
    params = tmp_path / "Params.yaml"
    params.write_text("featureClass: {firstorder: [Mean], shape2D: }\nsetting: {binCount: 8}\n")
    cache = tmp_path / "c.h5"
    assert main(["extract", str(data), "--positive", "malignant", "--handcrafted", "radiomics,lbp:radii=1",
                 "--cache", str(cache), "--quiet"]) == 0
    keys = set(FeatureCache(cache).keys())
    assert keys == {c.partition(":")[0] for c in HANDCRAFTED_GROUPS["radiomics"]} | {"lbp"}
    assert main(["extract", str(data), "--positive", "malignant", "--handcrafted", f"radiomics:params={params}",
                 "--cache", str(cache), "--quiet"]) == 0
    firstorder = [e for e in FeatureCache(cache).entries() if e.key == "firstorder"]
    assert len(firstorder) == 2  # the file's setting is a second entry beside the defaults
    assert {e.shape[1] for e in firstorder} == {18, 1}
    # an unreadable file is refused with the arguments, before the data are read
    assert main(["extract", str(data), "--positive", "malignant", "--handcrafted", "radiomics:params=nope.yaml",
                 "--cache", str(cache), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "Traceback" not in err


def test_evaluate_tokens_and_fusions_read_the_group_as_its_families():
    from featurekit.specs import FusionSpec, split_feature_tokens

    families = [c.partition(":")[0] for c in HANDCRAFTED_GROUPS["radiomics"]]
    # a group after a layer spec is no layer name: it ends the selector
    assert split_feature_tokens(["vgg16:block4_pool,block5_pool,radiomics,lbp"]) == [
        "vgg16:block4_pool,block5_pool", *families, "lbp"]
    fused = FusionSpec.parse("mobilenet_v2:features.18+radiomics")
    assert [str(p) for p in fused.parts] == ["mobilenet_v2:features.18", *families]


def test_a_study_step_reads_the_parameter_file_while_planning(tmp_path):
    from featurekit.studies import load_study, plan_study

    params = tmp_path / "Params.yaml"
    params.write_text("featureClass: {firstorder: [Mean], glcm: }\nsetting: {binCount: 8}\n")
    study = tmp_path / "s.toml"
    study.write_text(f"""
[study]
name = "rad"
[[steps]]
name = "features"
kind = "extract"
data = "{tmp_path}"
handcrafted = "radiomics:params={params},lbp"
""")
    step = plan_study(load_study(study)).steps[0].step
    assert [str(s) for s in step.handcrafted] == [
        "firstorder:bin_count=8;features=Mean", "glcm:bin_count=8;features=pyradiomics", "lbp"]
    params.write_text("featureClass: {firstorder: [Mean], glcm: }\nsetting: {binCount: 16}\n")
    step = plan_study(load_study(study)).steps[0].step  # the file is read at each planning: its own entries
    assert str(step.handcrafted[0]) == "firstorder:bin_count=16;features=Mean"
