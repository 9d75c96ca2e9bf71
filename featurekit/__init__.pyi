# The public names of ``featurekit`` and the module that defines each: the package's
# interface for type checkers and IDEs, and the table ``lazy_loader.attach_stub`` reads
# in ``__init__.py`` to import each name on first use. A name is added here, nowhere else.

__version__: str

# errors
from .errors import (
    CacheError as CacheError,
    CacheLockedError as CacheLockedError,
    ClusterError as ClusterError,
    DataError as DataError,
    DiskFullError as DiskFullError,
    FeaturekitError as FeaturekitError,
    LayerError as LayerError,
    ReadOnlyError as ReadOnlyError,
    StorageError as StorageError,
    WeightsError as WeightsError,
)

# what to extract
from .specs import HandcraftedSpec as HandcraftedSpec, LayerSpec as LayerSpec, Weights as Weights

# data
from .data import (
    Dataset as Dataset,
    group_near_duplicates as group_near_duplicates,
    load_dataset as load_dataset,
    make_phantom as make_phantom,
)
from .data.images_of import ImagesOf as ImagesOf

# features
from .extraction.pipeline import ExtractionResult as ExtractionResult, extract as extract
from .extraction.maps import MapResult as MapResult, layer_maps as layer_maps
from .cache import FeatureCache as FeatureCache
from .handcrafted import GaborFeatures as GaborFeatures, GLCMFeatures as GLCMFeatures, HaarFeatures as HaarFeatures
from .evaluation.estimators.features import CachedFeatures as CachedFeatures
from .models import layer_table as layer_table
from .models.weights import load_model as load_model

# evaluation
from .evaluation.results.crossval import Evaluation as Evaluation, cross_validate as cross_validate, plan_folds as plan_folds
from .evaluation.results.selection import SelectBestCandidate as SelectBestCandidate
from .orchestration import evaluate_features as evaluate_features
from .evaluation.results.comparison import compare_aucs as compare_aucs
from .evaluation.stats.lesion_energy import energy_summary as energy_summary, lesion_energy as lesion_energy
from .evaluation.stats.delong import delong_roc_test as delong_roc_test
from .evaluation.results.runfolder import read_run as read_run
from .report.build import build_report as build_report

# where the work runs (a Dask cluster: pass a dask.distributed.Client as executor=)
from .executors import DaskExecutor as DaskExecutor, LocalExecutor as LocalExecutor, local_cluster as local_cluster

# fine-tuning: the subpackage (fk.finetune.finetune, fk.finetune.cross_validate), its options and predictions
from . import finetune as finetune
from .finetune.config import FinetuneConfig as FinetuneConfig
from .finetune.predict import predict as predict
