# The public names of ``featurekit`` and the module that defines each: the package's
# interface for type checkers and IDEs, and the table ``lazy_loader.attach_stub`` reads
# in ``__init__.py`` to import each name on first use. A name is added here, nowhere else.

__version__: str

# errors
# fine-tuning: the subpackage (fk.finetune.finetune, fk.finetune.cross_validate), its options and predictions
from . import finetune as finetune
from .cache import FeatureCache as FeatureCache

# data
from .data import (
    Dataset as Dataset,
)
from .data import (
    group_near_duplicates as group_near_duplicates,
)
from .data import (
    load_dataset as load_dataset,
)
from .data import (
    make_phantom as make_phantom,
)
from .data.images_of import ImagesOf as ImagesOf
from .errors import (
    CacheError as CacheError,
)
from .errors import (
    CacheLockedError as CacheLockedError,
)
from .errors import (
    ClusterError as ClusterError,
)
from .errors import (
    DataError as DataError,
)
from .errors import (
    DiskFullError as DiskFullError,
)
from .errors import (
    FeaturekitError as FeaturekitError,
)
from .errors import (
    LayerError as LayerError,
)
from .errors import (
    ReadOnlyError as ReadOnlyError,
)
from .errors import (
    StorageError as StorageError,
)
from .errors import (
    WeightsError as WeightsError,
)
from .evaluation.estimators.features import CachedFeatures as CachedFeatures
from .evaluation.results.comparison import compare_aucs as compare_aucs

# evaluation
from .evaluation.results.crossval import Evaluation as Evaluation
from .evaluation.results.crossval import cross_validate as cross_validate
from .evaluation.results.crossval import plan_folds as plan_folds
from .evaluation.results.runfolder import read_run as read_run
from .evaluation.results.selection import SelectBestCandidate as SelectBestCandidate
from .evaluation.stats.delong import delong_roc_test as delong_roc_test
from .evaluation.stats.lesion_energy import energy_summary as energy_summary
from .evaluation.stats.lesion_energy import lesion_energy as lesion_energy

# where the work runs (a Dask cluster: pass a dask.distributed.Client as executor=)
from .executors import DaskExecutor as DaskExecutor
from .executors import LocalExecutor as LocalExecutor
from .executors import local_cluster as local_cluster
from .extraction.maps import MapResult as MapResult
from .extraction.maps import layer_maps as layer_maps

# features
from .extraction.pipeline import ExtractionResult as ExtractionResult
from .extraction.pipeline import extract as extract
from .finetune.config import FinetuneConfig as FinetuneConfig
from .finetune.predict import predict as predict
from .handcrafted import GaborFeatures as GaborFeatures
from .handcrafted import GLCMFeatures as GLCMFeatures
from .handcrafted import HaarFeatures as HaarFeatures
from .models import layer_table as layer_table
from .models.weights import load_model as load_model
from .orchestration import evaluate_features as evaluate_features
from .report.build import build_report as build_report

# what to extract
from .specs import HandcraftedSpec as HandcraftedSpec
from .specs import LayerSpec as LayerSpec
from .specs import Weights as Weights
