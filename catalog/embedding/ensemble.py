"""Several members of the EfficientNet-Lite family embedding together: their vectors side by side.

Each member's vector is unit length, so after the concatenation is normalised again (dividing by the
square root of the number of members) the cosine of two ensemble vectors is the mean of the members'
cosines: every member weighs the same, whatever its features' scale.
"""

import numpy as np
from PIL import Image

from catalog.embedding import Embedder, _l2_normalize


def concatenate_normalised(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of each part made unit length, the parts side by side, each row made unit length again."""
    if not parts:
        raise ValueError("an ensemble needs at least one member's vectors")
    return _l2_normalize(np.concatenate([_l2_normalize(np.asarray(p, np.float32)) for p in parts], axis=1))


class EnsembleEmbedder:
    """Turns images into unit-length vectors of sum(member dims): the members' vectors side by side.

    Its name and version join the members' ("efficientnet-lite0+efficientnet-lite2"), so vectors made by
    another ensemble, or by one member alone, are recognised as stale.
    """

    def __init__(self, members: list[Embedder]):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.name = "+".join(member.name for member in self.members)
        self.version = "+".join(member.version for member in self.members)
        self.dim = sum(member.dim for member in self.members)

    @property
    def is_loaded(self) -> bool:
        return all(member.is_loaded for member in self.members)

    def load(self) -> None:
        for member in self.members:
            member.load()

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Unit-length vectors, shape (n, dim), one row per image, in order."""
        return concatenate_normalised([member.embed(images) for member in self.members])
