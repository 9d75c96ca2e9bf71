"""scikit-learn estimators of the evaluation.

Classifiers by name, fusion, oversampling, cached features, feature sets.
"""
