"""Statistics of predictions: metrics, AUC kernel, thresholds, DeLong, bootstrap and interval methods, multiplicity, lesion energy.

NumPy / SciPy only: nothing here knows of estimators, run folders or torch.
"""
