"""Training the shipped match model on a seeded demo population with noisy duplicates.

``python -c "from sokhoe.mpi.training import train_default_model; train_default_model()"``
regenerates ``src/sokhoe/mpi/model.json`` and ``model_tf.json`` identically for the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_PATIENTS = 4000
DEFAULT_SEED = 20260701
PACKAGE_DIR = Path(__file__).resolve().parent


def train_default_model(
    out_dir: Path = PACKAGE_DIR, patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """Train on ``patients`` demo people plus 10 % noisy duplicates and write the model files.

    The seed differs from the bench's, so the bench measures a model that never saw its data.
    """
    from sokhoe.demo.duplicates import KEEP_CCCD, make_duplicates
    from sokhoe.mpi.features import patient_row
    from sokhoe.mpi.model import train_model

    data = make_duplicates(patients, seed)
    rows = [patient_row(p) for p in data.patients]
    return train_model(rows, seed, out_dir, id_recall=KEEP_CCCD)
