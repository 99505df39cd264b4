"""Location-specific expert segmenters (paper 003) as a mask front-end.

An embedding network (ResNet34 autoencoder + 5x5 pooling + two FC layers, trained with SmoothL1
reconstruction and a cosine triplet loss) maps an image to a 2048-d location embedding; k-means
over the training embeddings defines ``k`` clusters; one U-Net expert is trained per cluster;
at inference the nearest centroid picks the expert. Modules: :mod:`.embedding`, :mod:`.unet`,
:mod:`.kmeans`, :mod:`.model` (:class:`ExpertsFrontend`, sizes), :mod:`.losses`,
:mod:`.recipe` (training and the paper's two baselines), :mod:`.checkpoint` (one safetensors file
per model).
"""

from __future__ import annotations

from linegraph2road.frontends.experts.checkpoint import (
    EXPERTS_FORMAT,
    build_experts,
    load_experts,
    read_experts_config,
    save_experts,
)
from linegraph2road.frontends.experts.embedding import EmbeddingNet, EmbeddingSpec
from linegraph2road.frontends.experts.kmeans import KMeansResult, kmeans, nearest_centroid
from linegraph2road.frontends.experts.losses import (
    poly_scheduler,
    segmentation_loss,
    soft_jaccard,
    triplet_margin_loss,
)
from linegraph2road.frontends.experts.model import (
    EMPTY_LOGIT,
    EXPERTS_SIZES,
    ExpertsFrontend,
    ExpertsSpec,
    parse_size,
)
from linegraph2road.frontends.experts.recipe import (
    ExpertsTraining,
    embed_images,
    random_expert,
    sample_triplets,
    train_embedding,
    train_expert,
    train_location_experts,
    train_single_model,
)
from linegraph2road.frontends.experts.unet import UNetExpert, UNetSpec

__all__ = [
    "EMPTY_LOGIT",
    "EXPERTS_FORMAT",
    "EXPERTS_SIZES",
    "EmbeddingNet",
    "EmbeddingSpec",
    "ExpertsFrontend",
    "ExpertsSpec",
    "ExpertsTraining",
    "KMeansResult",
    "UNetExpert",
    "UNetSpec",
    "build_experts",
    "embed_images",
    "kmeans",
    "load_experts",
    "nearest_centroid",
    "parse_size",
    "poly_scheduler",
    "random_expert",
    "read_experts_config",
    "sample_triplets",
    "save_experts",
    "segmentation_loss",
    "soft_jaccard",
    "train_embedding",
    "train_expert",
    "train_location_experts",
    "train_single_model",
    "triplet_margin_loss",
]
