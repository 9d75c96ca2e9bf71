"""The HDF5 feature cache: compute every feature once, reuse it everywhere, never serve it wrong.

One HDF5 file per dataset (default ``cache/<dataset>-<fingerprint12>.h5``;
``$FEATUREKIT_CACHE`` or ``--cache FILE`` choose another). Layout (format 2),
readable with plain h5py::

    /                    attrs: featurekit_cache (= 2), fingerprint, dataset, source, n,
                         class_names (JSON), positive, created, featurekit_version,
                         reading (JSON; DICOM / volume data: the window and reading rules)
    /ids                 (N,) UTF-8 strings, dataset order
    /labels              (N,) int64, index into class_names (-1 = unlabelled)
    /row_hashes          (N,) hex sha256 of each sample's content (image, mask, ROI)
    /groups              (N,) strings, when the dataset has groups
    /skipped/ids, /skipped/row_hashes, /skipped/reasons
                         images of the dataset that have no rows (unreadable, --on-error skip)
    /features/<key>/<entry_id>        (N, D) float32 (or float16)
    /feature_names/<key>/<entry_id>   (D,) strings, when the extractor names them

``key`` says what the features are (``vgg16/block4_pool``, ``gabor``); the
``entry_id`` (``v`` + 16 hex digits) is a hash of every parameter that changes
the values (model, layer, pooling, weights and their sha256, input size,
preprocessing; for handcrafted features the estimator's parameters). A key can
hold several entries (e.g. ImageNet and random weights); each entry carries
its parameters as attributes (``model``, ``layer``, ``pool``, ``weights``,
``input_size``, ``preprocessing`` ..., ``params``: the JSON the id hashes,
``featurekit_version``, ``torch_version``, ``created``) and two checksums:
``sha256`` of its array and ``rows_sha256`` of the ids and row hashes it was
written for. Format-1 files (no checksums, no row hashes) are refused with a
message: remove and rebuild them.

Nothing wrong is served. Every read checks the entry's ``rows_sha256``
against ``/ids`` and ``/row_hashes`` (rows never move to other samples) and,
the first time the entry is read in a process (per file version), its
``sha256``; the small datasets (ids, labels, names) carry HDF5's Fletcher-32
checksum, object headers their own, and attributes a seal (``attrs_sha256``). A damaged entry is a :class:`~featurekit.errors.CacheError`
naming the file and the entry; ``extract`` recomputes it; the other entries
stay readable (``featurekit cache info`` lists the damaged ones, ``featurekit
cache verify`` checks every checksum). Attributes are read as text and
numbers only (nothing is ever unpickled).

Crash safety. The HDF5 file is never modified in place: a writer journals each
finished batch under ``<file>.partial/`` (:mod:`featurekit.cache.journal`,
bound to the data and to each entry's parameters, every batch checksummed)
and when a run's entries are complete it builds the new file next to the old
one and ``os.replace``-s it in one atomic step. A run killed at any moment
(SIGKILL included) leaves the old file intact plus the batches it finished;
the next run recomputes only the missing batches, on the same batch grid, so
its results are identical to an uninterrupted run. A journal of other data or
other parameters, or a damaged batch file, is discarded with a warning and
recomputed, never merged. Writers take an exclusive ``flock`` on
``<file>.lock`` (:mod:`featurekit.cache.lock`): a second writer waits up to
``lock_timeout`` seconds, then fails with :class:`~featurekit.errors.CacheLockedError`.
A lock is held only by the process that took it (forked children, e.g.
DataLoader workers, drop their copy). Readers take no lock, so a complete cache on a read-only file system is read
as usual; writing there is a :class:`~featurekit.errors.ReadOnlyError`. A full
disk is a :class:`~featurekit.errors.DiskFullError` naming the folder and the
space needed, with the old file unchanged and no temporary file left.

Rows are reused per image. Each row is keyed by the sample's id and content
hash (:meth:`featurekit.data.Dataset.sample_hash`). When a dataset gains,
loses or changes images its fingerprint changes, and so does its default
file name; the new file is seeded with every row of the same (id, content
hash) found in the caches and journals of the same folder that belong to a
dataset of the same name (:mod:`featurekit.cache.reuse`): only new and
changed images are computed. The older files stay as they were (``featurekit
cache rm`` removes them); journals whose rows were taken over are removed. A
file named with ``--cache`` that holds another version of the same dataset
(same name) is rebuilt for the current data the same way, keeping the rows of
unchanged images, also of entries not asked for in that run; when the
current data lacks some of its images (a ``--subsample`` run, images removed)
the old file is kept beside it as ``<name>-<fingerprint12>.h5`` (nothing
computed is lost, and its rows are reused when the images come back). A
``--cache`` that is a symbolic link is its target (written, locked and
journaled there). A file of a dataset with another name is never overwritten. Rows reused this way hold the
values computed when the image was first extracted; a CNN row can differ from
a fresh run in the last float32 bits when its batch companions differ.

Unreadable images. ``on_error="skip"`` (``--on-error skip``) leaves images
that cannot be read or processed out of the file: they have no rows (never
zeros), are listed under ``/skipped`` with the reason, and a read asking for
them names them. A rerun with the same data skips them again without
decoding them; a run with ``on_error="raise"`` over such a file stops with a
message listing them.
"""

from featurekit.cache.entries import DatasetMeta, Entry, EntrySpec
from featurekit.cache.layout import FORMAT_VERSION
from featurekit.cache.reader import FeatureCache, default_cache_dir, default_cache_path
from featurekit.cache.writer import CacheWriter
from featurekit.io import canonical_json

__all__ = [
    "FORMAT_VERSION",
    "CacheWriter",
    "DatasetMeta",
    "Entry",
    "EntrySpec",
    "FeatureCache",
    "canonical_json",
    "default_cache_dir",
    "default_cache_path",
]
