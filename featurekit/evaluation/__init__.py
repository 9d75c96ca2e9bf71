"""Evaluation: metrics, DeLong's test, bootstrap intervals, CV protocols, resampling.

Submodules
----------
metrics
    Binary metrics with an explicit positive class, as one table (:data:`METRICS`)
    and :func:`binary_report`.
ranking
    The one AUC kernel (midranks), shared by metrics, bootstrap, DeLong and reports.
labels, thresholds
    Positive-class handling of labels; :func:`youden_threshold`.
delong
    DeLong's test of correlated AUCs (fast midrank algorithm of Sun & Xu, 2014).
bootstrap
    Stratified bootstrap percentile intervals, single and paired (ΔAUC).
splitters, protocols
    CV protocols as scikit-learn splitters; :func:`parse_cv`, :func:`iter_folds`
    (folds of any splitter, group leaks refused) and :func:`describe_protocol`.
resampling
    :class:`OversampledClassifier`, oversampling inside the training folds only.
features
    :class:`CachedFeatures`: a cached feature key as X inside a Pipeline.
fusion
    Early fusion (blocks scaled inside the fold) and :class:`LateFusionClassifier`.
classifiers
    Classifiers by name (:data:`CLASSIFIERS`), standardise -> classifier pipelines,
    nested hyper-parameter search.
crossval
    The cross-validation engine: :func:`cross_validate`, :func:`plan_folds`
    (the fold source every engine uses), :class:`Evaluation`.
featuresets
    Feature sets of cache entries and the estimator of each result row.
summary, comparison, runfolder
    Result rows from predictions, paired DeLong comparisons, run folders.
report, report_tables, report_figures
    Reports of run folders: assembly, tables, plots.

The pipeline-level names (``CachedFeatures``, ``cross_validate`` ...) are
imported on first use, so ``import featurekit.evaluation`` stays light. Planning
and extracting what an evaluation needs is :mod:`featurekit.orchestration`'s work.
"""

import lazy_loader

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


# the pipeline-level names (they need scikit-learn), each imported on first use
__getattr__, _, _lazy_names = lazy_loader.attach(__name__, submod_attrs={
    "features": ["CachedFeatures"],
    "fusion": ["early_fusion", "early_fusion_pipeline", "LateFusionClassifier"],
    "classifiers": ["CLASSIFIERS", "make_classifier", "make_pipeline_for"],
    "crossval": ["Evaluation", "cross_validate", "plan_folds"],
    "selection": ["SelectBestCandidate"],
    "comparison": ["compare_aucs"],
    "summary": ["summarise_predictions"],
    "report": ["build_report"],
})
__all__ += _lazy_names
