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
    ev.save("runs/busi"); fk.build_report("runs/busi")

Names are imported on first use (``import featurekit`` loads neither torch nor
scikit-learn), so a command that has nothing to compute stays fast. The names and
where each is defined are listed once, in ``__init__.pyi``: type checkers and IDEs
read it as the package's interface, and :func:`lazy_loader.attach_stub` reads it for
the imports on first use. Fine-tuning is the subpackage :mod:`featurekit.finetune`
(``fk.finetune.finetune``, ``fk.finetune.cross_validate``).
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
__all__ = ["__version__", *__all__]
