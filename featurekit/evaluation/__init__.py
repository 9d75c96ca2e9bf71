"""Evaluation: statistics, folds, estimators and the results of a cross-validation.

Subpackages, by topic
---------------------
stats
    Metrics with an explicit positive class (:data:`METRICS`), the AUC kernel
    (midranks), thresholds, DeLong's test, bootstrap intervals (stratified and
    over the independent unit), interval methods, multiplicity adjustment, and
    lesion energy. Knows nothing of estimators or torch.
folds
    CV protocols as scikit-learn splitters; :func:`parse_cv`, :func:`iter_folds`
    (folds of any splitter, group leaks refused) and :func:`describe_protocol`.
estimators
    Classifiers by name, early and late fusion, oversampling inside training
    folds, :class:`CachedFeatures` (a cached feature key as X) and the feature
    sets of cache entries.
results
    The cross-validation engine (:func:`cross_validate`, :func:`plan_folds`),
    the selected row, result rows from predictions, paired comparisons and
    run folders.

Reports of run folders are :mod:`featurekit.report`, one layer up.

The pipeline-level names (``CachedFeatures``, ``cross_validate`` ...) are
imported on first use, so ``import featurekit.evaluation`` stays light. Planning
and extracting what an evaluation needs is :mod:`featurekit.orchestration`'s work.
"""

import lazy_loader

from featurekit.evaluation.estimators.resampling import OversampledClassifier
from featurekit.evaluation.folds.protocols import (
    CVSpecError,
    Fold,
    HoldoutCV,
    PredefinedSplitCV,
    StratifiedKFoldCV,
    parse_cv,
)
from featurekit.evaluation.stats.bootstrap import (
    BootstrapResult,
    PairedBootstrapResult,
    bootstrap_ci,
    bootstrap_delta_auc,
    bootstrap_metrics,
    bootstrap_paired_ci,
)
from featurekit.evaluation.stats.delong import (
    DeLongResult,
    NestedModelWarning,
    delong_auc_ci,
    delong_covariance,
    delong_roc_test,
    delong_roc_variance,
)
from featurekit.evaluation.stats.metrics import (
    METRICS,
    THRESHOLD_FREE,
    ConfusionCounts,
    UndefinedMetricWarning,
    accuracy,
    balanced_accuracy,
    binary_report,
    confusion_counts,
    f1,
    get_metric,
    mcc,
    npv,
    pr_auc,
    precision,
    roc_auc,
    sensitivity,
    specificity,
    youden_index,
    youden_threshold,
)

__all__ = [
    # metrics
    "METRICS",
    "THRESHOLD_FREE",
    "ConfusionCounts",
    "UndefinedMetricWarning",
    "accuracy",
    "balanced_accuracy",
    "binary_report",
    "confusion_counts",
    "f1",
    "get_metric",
    "mcc",
    "npv",
    "pr_auc",
    "precision",
    "roc_auc",
    "sensitivity",
    "specificity",
    "youden_index",
    "youden_threshold",
    # delong
    "DeLongResult",
    "NestedModelWarning",
    "delong_auc_ci",
    "delong_covariance",
    "delong_roc_test",
    "delong_roc_variance",
    # bootstrap
    "BootstrapResult",
    "PairedBootstrapResult",
    "bootstrap_ci",
    "bootstrap_delta_auc",
    "bootstrap_metrics",
    "bootstrap_paired_ci",
    # protocols
    "CVSpecError",
    "Fold",
    "HoldoutCV",
    "PredefinedSplitCV",
    "StratifiedKFoldCV",
    "parse_cv",
    # resampling
    "OversampledClassifier",
]


# the pipeline-level names (they need scikit-learn), each imported on first use
__getattr__, _, _lazy_names = lazy_loader.attach(__name__, submod_attrs={
    "estimators.features": ["CachedFeatures"],
    "estimators.fusion": ["early_fusion", "early_fusion_pipeline", "LateFusionClassifier"],
    "estimators.classifiers": ["CLASSIFIERS", "make_classifier", "make_pipeline_for"],
    "results.crossval": ["Evaluation", "cross_validate", "plan_folds"],
    "results.selection": ["SelectBestCandidate"],
    "results.comparison": ["compare_aucs"],
    "results.summary": ["summarise_predictions"],
})
__all__ += _lazy_names
