"""edgesim: simulator of self-learning (contrastive local learning) electrical networks."""

import os as _os

# edgesim's linear algebra is many small dense solves; on few cores, OpenBLAS
# threading makes them erratic and often far slower.  Respect a user's choice.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
