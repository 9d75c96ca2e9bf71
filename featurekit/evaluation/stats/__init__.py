"""Statistics of predictions.

Binary metrics, the AUC kernel, thresholds, DeLong, the bootstrap and its
interval methods, multiplicity adjustments, lesion energy, and the multi-class
metrics with their unit and paired bootstraps (:mod:`.multiclass`).

NumPy / SciPy only: nothing here knows of estimators, run folders or torch.
"""
