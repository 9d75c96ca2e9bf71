"""Where the folds come from.

CV protocols as scikit-learn splitters and the CV grammar (``"5"``, ``"5x3"``,
``"holdout:0.3x30"``, ``"predefined"``).
"""
