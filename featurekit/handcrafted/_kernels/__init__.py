"""Compiled loops of the handcrafted families (numba), where NumPy's whole-array steps cost more
than the work: one pass over a mask's bounding box instead of several temporaries.

Each kernel does one step of one algorithm, defined in the module that calls it (the
definitions and references are there; the tests compare each kernel with a NumPy or SciPy
statement of its step). The kernels count, so their results are exact integers (the exact
``numpy.digitize`` bins; the shape's diameter is the one float, from exact integer hull
vertices):

* :mod:`~featurekit.handcrafted._kernels.pixels`: :func:`all_finite` (the finiteness check of
  :mod:`featurekit.handcrafted._input`), :func:`masked_range` and :func:`digitize_masked` (the
  quantisation of :func:`featurekit.handcrafted.glcm_quantize.quantize_levels`);
* :mod:`~featurekit.handcrafted._kernels.texture`: :func:`zones8` (GLSZM), :func:`glrlm_runs`
  (GLRLM), :func:`dependence_counts` (GLDM), :func:`neighbourhood_counts` (NGTDM);
* :mod:`~featurekit.handcrafted._kernels.shape`: :func:`shape_counts` (2-D shape).

The kernels are compiled on their first call in a process (about a second each, once per
input type) and the machine code is cached beside them (numba's ``cache=True``; a read-only
install caches in the user's cache folder), so later processes load it; where neither folder
is writable (:data:`CACHE` is False) each process compiles them again. This package is the
only one that imports numba; the families import it only when they compute, so importing
featurekit does not.
"""

from featurekit.handcrafted._kernels._compile import CACHE
from featurekit.handcrafted._kernels.pixels import all_finite, digitize_masked, masked_range
from featurekit.handcrafted._kernels.shape import shape_counts
from featurekit.handcrafted._kernels.texture import dependence_counts, glrlm_runs, neighbourhood_counts, zones8

__all__ = ["CACHE", "all_finite", "masked_range", "digitize_masked", "zones8", "dependence_counts",
           "neighbourhood_counts", "glrlm_runs", "shape_counts"]
