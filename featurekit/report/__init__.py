"""Reports of run folders.

Assembly (:func:`build_report`), tables, figures, layer maps, the wording of
each protocol, and a paper's reference rows.

Reads run folders only; :func:`build_report` is imported on first use so that
``import featurekit.report`` stays light.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={"build": ["build_report"]})
