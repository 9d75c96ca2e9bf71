"""featurekit: which features separate benign from malignant, and how sure can we be.

Handcrafted texture features (Gabor, GLCM, Haar-like) and per-layer CNN
activations, extracted in one pass, cached in HDF5, compared with leak-free
cross-validation. The front door::

    import featurekit as fk
    ds = fk.load_dataset("busi/", classes=["benign", "malignant"], positive="malignant", roi="mask")
    result = fk.extract(ds, layers=["vgg16:8-17"], handcrafted=[fk.GaborFeatures(), "glcm"],
                        weights=fk.Weights.imagenet())
    pipe = make_pipeline(make_union(fk.CachedFeatures("vgg16/block5_conv3", result.cache),
                                    make_pipeline(fk.ImagesOf(ds), fk.HaarFeatures())),
                         StandardScaler(), SVC())
    ev = fk.cross_validate({"v+haar": pipe}, ds, cv="5x3")   # or any scikit-learn splitter
    ev.save("runs/busi"); fk.report("runs/busi")

Names are imported on first use (``import featurekit`` loads neither torch nor
scikit-learn), so a command that has nothing to compute stays fast.
"""

__version__ = "0.1.0"

from featurekit.errors import (  # noqa: E402
    CacheError,
    CacheLockedError,
    ClusterError,
    DataError,
    DiskFullError,
    FeaturekitError,
    LayerError,
    ReadOnlyError,
    StorageError,
    WeightsError,
)
from featurekit.specs import HandcraftedSpec, LayerSpec, Weights  # noqa: E402

#: public name -> module that defines it (imported on first use)
_LAZY = {
    # data
    "Dataset": "featurekit.data",
    "load_dataset": "featurekit.data",
    "make_phantom": "featurekit.data",
    "group_near_duplicates": "featurekit.data",
    "ImagesOf": "featurekit.data.images_of",
    # features
    "extract": "featurekit.extraction.pipeline",
    "ExtractionResult": "featurekit.extraction.pipeline",
    "FeatureCache": "featurekit.cache",
    "GaborFeatures": "featurekit.handcrafted",
    "GLCMFeatures": "featurekit.handcrafted",
    "HaarFeatures": "featurekit.handcrafted",
    "CachedFeatures": "featurekit.evaluation.features",
    "layer_table": "featurekit.models",
    "load_model": "featurekit.models.weights",
    # evaluation
    "cross_validate": "featurekit.evaluation.crossval",
    "plan_folds": "featurekit.evaluation.crossval",
    "Evaluation": "featurekit.evaluation.crossval",
    "evaluate_features": "featurekit.orchestration",
    "compare_aucs": "featurekit.evaluation.comparison",
    "delong_roc_test": "featurekit.evaluation.delong",
    "read_run": "featurekit.evaluation.runfolder",
    "build_report": "featurekit.evaluation.report",
    # where the work runs (a Dask cluster: pass a dask.distributed.Client as executor=)
    "LocalExecutor": "featurekit.executors",
    "DaskExecutor": "featurekit.executors",
    "local_cluster": "featurekit.executors",
    # fine-tuning
    "FinetuneConfig": "featurekit.finetune.config",
}
# names that differ from the defining module's (``featurekit.finetune`` is the subpackage itself)
_ALIASES = {"report": ("featurekit.evaluation.report", "build_report"),
            "fine_tune": ("featurekit.finetune.training", "finetune"),
            "fine_tune_cv": ("featurekit.finetune.crossval", "cross_validate"),
            "predict": ("featurekit.finetune.predict", "predict")}

__all__ = [
    "__version__",
    "FeaturekitError",
    "DataError",
    "LayerError",
    "WeightsError",
    "CacheError",
    "CacheLockedError",
    "ClusterError",
    "StorageError",
    "DiskFullError",
    "ReadOnlyError",
    "Weights",
    "LayerSpec",
    "HandcraftedSpec",
    "report",
    "fine_tune",
    "fine_tune_cv",
    "predict",
    *_LAZY,
]


def __getattr__(name):
    import importlib

    if name in _ALIASES:
        module, attr = _ALIASES[name]
        return getattr(importlib.import_module(module), attr)
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'featurekit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
