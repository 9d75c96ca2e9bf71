"""Evaluation: metrics, DeLong's test, bootstrap intervals, CV protocols, resampling.

Submodules
----------
metrics
    Binary metrics with an explicit positive class, the :data:`METRICS` registry,
    :func:`youden_threshold` and :func:`binary_report`.
delong
    DeLong's test of correlated AUCs (fast midrank algorithm of Sun & Xu, 2014).
bootstrap
    Stratified bootstrap percentile intervals, single and paired (ΔAUC).
protocols
    CV protocols as scikit-learn splitters and :func:`parse_cv`.
resampling
    :class:`OversampledClassifier`, oversampling inside the training folds only.
"""

from featurekit.evaluation.bootstrap import (
    BootstrapResult,
    PairedBootstrapResult,
    bootstrap_ci,
    bootstrap_delta_auc,
    bootstrap_metrics,
    bootstrap_paired_ci,
)
from featurekit.evaluation.delong import (
    DeLongResult,
    NestedModelWarning,
    delong_auc_ci,
    delong_covariance,
    delong_roc_test,
    delong_roc_variance,
)
from featurekit.evaluation.metrics import (
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
from featurekit.evaluation.protocols import (
    CVSpecError,
    Fold,
    HoldoutCV,
    PredefinedSplitCV,
    StratifiedKFoldCV,
    parse_cv,
)
from featurekit.evaluation.resampling import OversampledClassifier

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
