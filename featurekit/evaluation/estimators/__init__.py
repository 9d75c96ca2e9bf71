"""scikit-learn estimators of the evaluation: classifiers by name, fusion, oversampling, cached features, feature sets."""
