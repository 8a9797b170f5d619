"""The architecture table: each `--arch` name and the module that defines its G, D and `SPEC`.

Torch-free on purpose: the CLI's `--arch` choices, `edgegan train --help` and config validation messages read the
names here, in an install without torch too; `trainer/models/__init__.py` imports each module to build
ARCHITECTURES (name -> Architecture). Adding an architecture: its module under trainer/models/ and one row here.
The order is the CLI's and the error messages' ("choose one of gan, dcgan").
"""

from __future__ import annotations

ARCHITECTURE_MODULES: dict[str, str] = {
    "gan": "edgegan.trainer.models.mlp",  # Goodfellow et al. 2014: MLP G and D
    "dcgan": "edgegan.trainer.models.dcgan",  # Radford et al. 2015: ConvTranspose G, strided-conv D
}
ARCHS = tuple(ARCHITECTURE_MODULES)
# D's normalisation (`--d-norm`, a recipe key): the architecture's own BatchNorms, or spectral normalisation of
# every weight with the BatchNorms removed (trainer/models/layers.py spectrally_normed).
D_NORMS = ("batch", "spectral")
