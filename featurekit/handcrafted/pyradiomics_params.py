"""A pyradiomics parameter file (YAML or JSON) as featurekit family settings.

:func:`read_pyradiomics_params` reads the file once, at the edge (the
command line's ``--handcrafted radiomics:params=FILE.yaml``, or a call), and
returns typed :class:`~featurekit.specs.HandcraftedSpec` s, one per enabled
feature class, which then travel down like any other spec (and key the cache
by their settings). What is read:

``featureClass``
    Which classes, and which of their features (``[]`` or ``null``: all of
    pyradiomics' default ones; for GLCM ``features=pyradiomics``). pyradiomics' ``shape2D`` is the ``shape``
    family (its 3-D ``shape`` too: featurekit's images are 2-D). Without a
    ``featureClass`` section every class is enabled, as in pyradiomics.
    Classes that are not among the asked-for families (``radiomics`` = all
    of :data:`featurekit.specs.HANDCRAFTED_GROUPS`) are left out.
``setting`` (and ``imageType: {Original: {...}}``, which overrides it)
    ``binWidth`` -> ``bin_width``, ``binCount`` -> ``bin_count``,
    ``voxelArrayShift`` -> ``voxel_array_shift``, ``symmetricalGLCM`` ->
    ``symmetric``, ``distances``, ``gldm_a``; each goes to the families whose
    transformer has that parameter. A ``binWidth`` equal to pyradiomics'
    default (25) is still written out, so a file states its setting in the cache key.
    Settings that only shape pyradiomics' own run (``label``,
    ``additionalInfo``, ``correctMask``, ``geometryTolerance``, ``preCrop``,
    ``padDistance``, ``minimumROI*``, ``enableCExtensions``, ``force2D``,
    ``force2Ddimension``, LBP and filter settings of image types not enabled)
    are ignored; settings that would change the values and that featurekit does
    not do -- resampling, normalisation, re-segmentation, outlier removal,
    a ``weightingNorm``, image types other than ``Original``, voxel-based
    extraction -- are a :class:`~featurekit.errors.DataError` naming the file
    and the setting, never silently dropped.

Example: ``read_pyradiomics_params("Params.yaml")`` ->
``[HandcraftedSpec('firstorder', (('bin_width', 10.0),)), HandcraftedSpec('glcm', ...), ...]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, List, Mapping, Optional

from featurekit.errors import DataError, FeaturekitError
from featurekit.specs import HANDCRAFTED, HANDCRAFTED_GROUPS, HandcraftedSpec

__all__ = ["read_pyradiomics_params", "specs_from_params", "SETTINGS", "CLASSES"]

#: pyradiomics setting -> featurekit parameter (given to every family that has it)
SETTINGS = {
    "binWidth": "bin_width",
    "binCount": "bin_count",
    "voxelArrayShift": "voxel_array_shift",
    "symmetricalGLCM": "symmetric",
    "distances": "distances",
    "gldm_a": "gldm_a",
}
#: pyradiomics feature class -> featurekit family
CLASSES = {"firstorder": "firstorder", "shape2D": "shape", "shape": "shape", "glcm": "glcm",
           "glrlm": "glrlm", "glszm": "glszm", "gldm": "gldm", "ngtdm": "ngtdm"}
#: settings that change pyradiomics' values in ways featurekit does not reproduce (when set)
_UNSUPPORTED = {
    "normalize": "image normalisation", "resampledPixelSpacing": "resampling",
    "resegmentRange": "re-segmentation", "removeOutliers": "outlier removal",
    "weightingNorm": "GLCM weighting by distance norm",
}
_IGNORED = {
    "label", "label_channel", "additionalInfo", "correctMask", "geometryTolerance", "preCrop", "padDistance",
    "minimumROIDimensions", "minimumROISize", "enableCExtensions", "force2D", "force2Ddimension",
    "interpolator", "normalizeScale", "resegmentMode", "resegmentShape", "sigma", "start_level", "level",
    "wavelet", "gradientUseSpacing", "lbp2DRadius", "lbp2DSamples", "lbp2DMethod", "lbp3DLevels",
    "lbp3DIcosphereRadius", "lbp3DIcosphereSubdivision",
}


def _load(path: Path) -> Mapping[str, Any]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with the test and cluster extras
        raise DataError(f"{path}: reading a pyradiomics parameter file needs PyYAML (pip install pyyaml)") from None
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"cannot read the pyradiomics parameter file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{path} is not a YAML/JSON parameter file: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: a pyradiomics parameter file is a mapping (setting:, featureClass:, ...), "
                        f"got {type(data).__name__}")
    return data


def _section(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: '{key}' must be a mapping, got {value!r}")
    return value


def _value(name: str, value: Any, where: str) -> Any:
    """A setting's value as the featurekit parameter takes it."""
    if name == "distances":
        if not isinstance(value, (list, tuple)) or not value:
            raise DataError(f"{where}: distances must be a list of positive integers, got {value!r}")
        return tuple(value)
    if name == "binCount" or name == "gldm_a":
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{where}: {name} must be an integer, got {value!r}")
        return value
    if name == "symmetricalGLCM":
        if not isinstance(value, bool):
            raise DataError(f"{where}: symmetricalGLCM must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def specs_from_params(data: Mapping[str, Any], families: Optional[Iterable[str]] = None, *,
                      where: str = "pyradiomics parameters") -> List[HandcraftedSpec]:
    """The specs of an already-loaded parameter mapping (module docstring); ``where`` names it in errors."""
    from featurekit.handcrafted import FAMILIES

    wanted = ([HandcraftedSpec.parse(c).family for c in HANDCRAFTED_GROUPS["radiomics"]] if families is None
              else list(families))
    unknown = [f for f in wanted if f not in HANDCRAFTED]
    if unknown:
        raise DataError(f"{where}: unknown handcrafted families {unknown}; choose from {', '.join(HANDCRAFTED)}")
    extra = set(data) - {"setting", "featureClass", "imageType", "voxelSetting"}
    if extra:
        raise DataError(f"{where}: unknown section(s) {', '.join(sorted(extra))}; a pyradiomics parameter file "
                        "has setting, featureClass, imageType and voxelSetting")
    if data.get("voxelSetting"):
        raise DataError(f"{where}: voxelSetting (voxel-based feature maps) is not supported; "
                        "featurekit computes one value per feature and ROI")
    settings = dict(_section(data, "setting", where))
    image_types = _section(data, "imageType", where)
    other = [t for t in image_types if t != "Original"]
    if other:
        raise DataError(f"{where}: image type(s) {', '.join(other)} are not supported; featurekit computes the "
                        "features of the original image (imageType: Original)")
    settings.update(_section(image_types, "Original", where) if "Original" in image_types else {})
    for key, value in settings.items():
        if key in _UNSUPPORTED and value not in (None, False):
            raise DataError(f"{where}: setting {key}={value!r} ({_UNSUPPORTED[key]}) is not supported by "
                            "featurekit; remove it or prepare the images accordingly")
        if key not in SETTINGS and key not in _UNSUPPORTED and key not in _IGNORED:
            raise DataError(f"{where}: unknown pyradiomics setting {key!r}")
    classes = data.get("featureClass")
    if classes is None:
        classes = {c: None for c in ("firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm")}
    if not isinstance(classes, Mapping):
        raise DataError(f"{where}: featureClass must be a mapping of class -> features, got {classes!r}")
    out: List[HandcraftedSpec] = []
    seen = set()
    for cls, feats in classes.items():
        if cls not in CLASSES:
            raise DataError(f"{where}: unknown feature class {cls!r}; featurekit has {', '.join(CLASSES)}")
        family = CLASSES[cls]
        if family not in wanted or family in seen:
            continue
        seen.add(family)
        valid = FAMILIES[family]().get_params(deep=False)
        params = {SETTINGS[k]: _value(k, v, where) for k, v in settings.items()
                  if k in SETTINGS and v is not None and SETTINGS[k] in valid}
        if params.get("bin_count") is not None:
            params.pop("bin_width", None)  # pyradiomics: binCount wins over binWidth
        if feats:
            if not isinstance(feats, (list, tuple)) or not all(isinstance(f, str) for f in feats):
                raise DataError(f"{where}: the features of {cls} must be a list of names, got {feats!r}")
            params["features"] = tuple(feats)
        elif family == "glcm":
            params["features"] = "pyradiomics"  # its 24 default features, not skimage's set as well
        out.append(HandcraftedSpec(family, tuple(sorted(params.items()))))
    return out


def read_pyradiomics_params(path: str | os.PathLike, families: Optional[Iterable[str]] = None
                            ) -> List[HandcraftedSpec]:
    """The families and settings a pyradiomics parameter file names, as featurekit specs.

    Parameters
    ----------
    path : str or PathLike
        A pyradiomics parameter file (YAML or JSON).
    families : iterable of str, optional
        Keep only these families (default: every radiomics family).

    Returns
    -------
    list of HandcraftedSpec
        In the file's ``featureClass`` order; checked against each family's
        parameters (an unknown feature name raises here, naming the file).

    Raises
    ------
    DataError
        Unreadable file, a setting featurekit does not reproduce, an unknown
        class or feature; the message names the file.
    """
    from featurekit.handcrafted import from_spec

    path = Path(path)
    specs = specs_from_params(_load(path), families, where=str(path))
    for spec in specs:
        try:
            from_spec(spec).fit()  # every value and feature name checked now, naming the file
        except FeaturekitError as exc:
            raise DataError(f"{path}: {spec.family}: {exc}") from None
    return specs
