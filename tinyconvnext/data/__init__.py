"""The data layer: downloading, reading official archives, and caching decoded arrays.

    from tinyconvnext.data import load_cifar10, load_imagenette
    cifar = load_cifar10()                     # $TINYCONVNEXT_DATA, the cache folder, or download=True
    cifar.train_images.shape                   # (50000, 32, 32, 3) uint8; cifar.train_labels int64
    nette = load_imagenette(size=160)          # ImageSets of different-sized images
    nette.train[0], nette.train.labels[0]     # an (H, W, 3) uint8 view; its label

Where files go: downloads and decoded ``.npy`` arrays in ``cache_dir()`` (``$TINYCONVNEXT_CACHE``, else
``~/.cache/tinyconvnext``); data sets are looked for in ``data_dir`` / ``$TINYCONVNEXT_DATA`` first.
"""

from .cifar import Cifar10, find_cifar10, load_cifar10, read_cifar10  # noqa: F401

# The function download() stays in .download: re-exported here it would hide the module of the same name.
from .download import cache_dir, default_data_dir, file_digest  # noqa: F401
from .errors import ChecksumError, DataError, DataNotFoundError  # noqa: F401
from .imagenette import (  # noqa: F401
    Imagenette,
    ImageSet,
    find_imagenette,
    list_imagenette,
    load_imagenette,
    read_imagenette,
)
