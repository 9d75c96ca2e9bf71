"""What a cross-validation produces: the engine, the selected row, result rows, paired comparisons, run folders."""
