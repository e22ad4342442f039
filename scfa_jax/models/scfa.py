"""The SCFA network: ResNet encoder + projection head (+ optional classifier)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from scfa_jax.models import fusion as fusion_lib
from scfa_jax.models import resnet

Array = Any
PRETEXT_TASKS = ('arrow_of_time', 'speed', 'shuffle')  # data.pretext.TASKS: the order of heads and loss terms


class ProjectionHead(nn.Module):
  """2-layer MLP with ReLU and an L2-normalised output (the SupCon head)."""

  hidden_dim: int = 2048
  output_dim: int = 128

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = nn.relu(nn.Dense(self.hidden_dim, name='dense1')(x))
    x = nn.Dense(self.output_dim, name='dense2')(x)
    # Normalise in float32; unnormalised features are a classic SupCon NaN source.
    x = x.astype(jnp.float32)
    return x * jnp.reciprocal(jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12))


class PretextHead(nn.Module):
  """A small MLP from the video feature to the classes of one temporal pretext task (``loss.pretext``)."""

  hidden_dim: int
  num_classes: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = nn.relu(nn.Dense(self.hidden_dim, name='dense1')(x))
    return nn.Dense(self.num_classes, name='dense2')(x).astype(jnp.float32)


def grid_to_frames(images: Array, rows: int, cols: int) -> Array:
  """[B, rows*h, cols*w, C] grid images -> [B*rows*cols, h, w, C] frames, row-major per video.

  The inverse of ``data.grid.frames_to_grid``: the TSN baseline reuses the
  grid pipeline as a container for its K frames and encodes each on its own.
  """
  b, height, width, c = images.shape
  h, w = height // rows, width // cols
  frames = images.reshape(b, rows, h, cols, w, c).transpose(0, 1, 3, 2, 4, 5)
  return frames.reshape(b * rows * cols, h, w, c)


class SCFAModel(nn.Module):
  """Encoder shared by both views, projection head and optional classifier.

  ``__call__`` returns a dict with ``features`` (pooled encoder output, used by
  the linear probe, kNN and retrieval), ``projection`` (unit-norm, used by the
  SupCon loss) and ``logits`` (only when ``num_classes`` > 0: the cross-entropy
  baseline and fine-tuning).

  With ``frame_grid=(rows, cols)`` the model is the TSN baseline instead: each
  tile of the input grid is a frame from one temporal segment, encoded as an
  image of its own, and the video's features and class scores are the averages
  of the per-frame ones (TSN's segmental consensus), so time order is not seen.

  A 5-D input [N, P, H, W, C] is a fused multi-scale sample
  (``data.fuse_local_views``): every pathway is encoded (``models.fusion``)
  and ``features`` is their fusion, which the heads then see. With
  ``pathway_heads`` (pathway indices), ``pathway_projections`` [N, len(pathway_heads), proj_dim]
  adds those pathways' pooled features, each through a projection head of its
  own (pathway p's is ``pathway_projection{p}``), for the auxiliary per-pathway
  SupCon terms.

  With ``pretext_heads`` ((task, classes) pairs), ``pretext_logits`` {task: [N, classes]}
  are each task's head (``pretext_<task>``, a small MLP) on the video feature.
  """

  encoder: nn.Module
  proj_hidden_dim: int = 2048
  proj_dim: int = 128
  num_classes: int = 0
  classifier_hidden_dim: int = 0  # >0: Dense(hidden, relu) -> Dense(classes), as the authors fine-tuned
  frame_grid: Optional[Tuple[int, int]] = None  # (rows, cols): TSN, every tile encoded as its own frame
  fusion: str = 'concat'  # fused samples: how pathway features become one (models.fusion.FUSIONS)
  separate_pathways: bool = False  # fused samples: ``encoder`` is models.fusion.separate_encoders
  pathway_heads: Tuple[int, ...] = ()  # fused samples: pathways with a projection head of their own (aux terms)
  local_feature_weight: float = 1.0  # fused concat: the local views' share of the video feature (models.fusion.Fuse)
  pretext_heads: Tuple[Tuple[str, int], ...] = ()  # (task, classes): temporal pretext heads (loss.pretext)

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> dict[str, Array]:
    num_videos = x.shape[0]
    extra = {}
    if x.ndim == 5:  # [N, P, H, W, C]: fused multi-scale samples
      pathways = fusion_lib.encode_pathways(self.encoder, x, train=train, separate=self.separate_pathways)
      features = fusion_lib.Fuse(self.fusion, self.local_feature_weight, name='fusion')(pathways)
      if self.pathway_heads:  # each weighted pathway's own SupCon term (auxiliary to the fused one) projects here
        extra['pathway_projections'] = jnp.stack(
            [ProjectionHead(self.proj_hidden_dim, self.proj_dim, name=f'pathway_projection{p}')(pathways[:, p])
             for p in self.pathway_heads], axis=1)
    else:
      if self.frame_grid:
        x = grid_to_frames(x, *self.frame_grid)
      _, features = self.encoder(x, train=train)
    video_features = _per_video_mean(features, num_videos)
    out = {
        'features': video_features,
        'projection': ProjectionHead(self.proj_hidden_dim, self.proj_dim, name='projection')(video_features),
        **extra,
    }
    if self.pretext_heads:
      out['pretext_logits'] = {task: PretextHead(self.proj_hidden_dim, classes, name=f'pretext_{task}')(video_features)
                               for task, classes in self.pretext_heads}
    if self.num_classes:
      h = features  # per frame for TSN: the class scores are averaged, as TSN does, not the features
      if self.classifier_hidden_dim:
        h = nn.relu(nn.Dense(self.classifier_hidden_dim, name='classifier_hidden')(h))
      logits = nn.Dense(self.num_classes, name='classifier')(h).astype(jnp.float32)
      out['logits'] = _per_video_mean(logits, num_videos)
    return out


def _per_video_mean(per_image: Array, num_videos: int) -> Array:
  """[B*K, ...] -> [B, ...]: the mean over each video's K frames (the identity for K = 1)."""
  if per_image.shape[0] == num_videos:
    return per_image
  return per_image.reshape((num_videos, -1) + per_image.shape[1:]).mean(axis=1)


def create_model(model_config: ml_collections.ConfigDict, *, num_classes: int = 0, axis_name: Optional[str] = None,
                 frame_grid: Optional[Tuple[int, int]] = None, num_pathways: int = 0,
                 pathway_heads: Sequence[int] = (), pretext_heads: Sequence[Tuple[str, int]] = ()) -> SCFAModel:
  """Builds the SCFA model described by ``config.model``.

  ``frame_grid`` (rows, cols) makes it the TSN baseline; pass
  :func:`frame_grid_of` (config), which is None unless ``model.per_frame``.
  ``num_pathways`` P > 0 (:func:`num_pathways_of`) is a model of fused
  multi-scale samples; it only matters for ``model.separate_pathways``.
  ``pathway_heads`` (:func:`pathway_heads_of`): the pathways that get a
  projection head of their own, for the auxiliary terms of ``loss.pathway_aux_weight``
  and ``loss.local_aux_weight``.
  """
  encoder_kwargs = dict(
      depth=model_config.depth,
      width=model_config.width,
      variant=model_config.variant,
      num_classes=0,
      axis_name=axis_name if model_config.sync_batch_norm else None,
      bn_momentum=model_config.bn_momentum,
      dtype=jnp.dtype(model_config.dtype),
  )
  separate = bool(num_pathways and model_config.get('separate_pathways', False))
  encoder = (fusion_lib.separate_encoders(encoder_kwargs, num_pathways) if separate
             else resnet.ResNet(**encoder_kwargs))
  return SCFAModel(
      encoder=encoder,
      proj_hidden_dim=model_config.proj_hidden_dim,
      proj_dim=model_config.proj_dim,
      num_classes=num_classes,
      classifier_hidden_dim=model_config.classifier_hidden_dim,
      frame_grid=tuple(frame_grid) if frame_grid else None,
      fusion=model_config.get('fusion', 'concat'),
      separate_pathways=separate,
      pathway_heads=tuple(pathway_heads) if num_pathways else (),
      local_feature_weight=float(model_config.get('local_feature_weight', 1.0)),
      pretext_heads=tuple(pretext_heads),
  )


def model_of(config: ml_collections.ConfigDict, *, num_classes: int = 0, axis_name: Optional[str] = None,
             pathway_heads: bool = True) -> SCFAModel:
  """The model a run's whole ``config`` describes: :func:`create_model` with what the config implies.

  The TSN frame grid, the fused pathways and the per-pathway heads are read
  from ``config`` here, so every caller builds the same model (and a restore
  finds the same variables). ``pathway_heads=False`` leaves out the training-only
  per-pathway and pretext heads (fine-tuning drops them).
  """
  return create_model(config.model, num_classes=num_classes, axis_name=axis_name, frame_grid=frame_grid_of(config),
                      num_pathways=num_pathways_of(config), pathway_heads=pathway_heads_of(config) if pathway_heads else (),
                      pretext_heads=pretext_heads_of(config) if pathway_heads else ())


def pretext_heads_of(config: ml_collections.ConfigDict) -> Tuple[Tuple[str, int], ...]:
  """(task, classes) of every temporal pretext task with a weight > 0 (``loss.pretext``), in TASKS order."""
  pretext = config.loss.get('pretext')
  if pretext is None:
    return ()
  classes = {'arrow_of_time': 2, 'speed': pretext.get('speed_classes', 2), 'shuffle': 2}
  return tuple((task, classes[task]) for task in PRETEXT_TASKS if pretext.get(task, 0.0) > 0)


def frame_grid_of(config: ml_collections.ConfigDict) -> Optional[Tuple[int, int]]:
  """The (rows, cols) that ``create_model`` needs for ``model.per_frame`` (TSN); None for the grid method."""
  return (config.data.grid_rows, config.data.grid_cols) if config.model.get('per_frame') else None


def num_pathways_of(config: ml_collections.ConfigDict) -> int:
  """Pathways P of a fused sample (1 global grid + ``data.num_local_views``), or 0 when views are not fused."""
  return 1 + config.data.num_local_views if config.data.get('fuse_local_views') else 0


def pathway_aux_weights(loss_config: ml_collections.ConfigDict, num_pathways: int) -> Tuple[float, ...]:
  """The weight of each pathway's own SupCon term: the global grid's, then each local view's (0: no term).

  ``loss.pathway_aux_weight`` weighs the global grid's term, and the local views'
  too unless ``loss.local_aux_weight`` is set (None = the same weight).
  """
  global_weight = float(loss_config.get('pathway_aux_weight', 0.0))
  local_weight = loss_config.get('local_aux_weight')
  local_weight = global_weight if local_weight is None else float(local_weight)
  return ((global_weight,) + (local_weight,) * (num_pathways - 1)) if num_pathways else ()


def head_aux_weights(loss_config: ml_collections.ConfigDict, num_heads: int) -> Tuple[float, ...]:
  """The weights of the terms of a model's ``num_heads`` per-pathway heads, in their order.

  The heads are those of the pathways with a positive weight (:func:`pathway_heads_of`),
  so the global grid's comes first when it has one and the rest are local views'.
  """
  global_weight, local_weight = pathway_aux_weights(loss_config, 2)
  first = (global_weight,) if global_weight > 0 else ()
  return first + (local_weight,) * (num_heads - len(first))


def pathway_heads_of(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
  """The pathways of a fused model that get a projection head: those whose auxiliary term has a weight > 0."""
  weights = pathway_aux_weights(config.loss, num_pathways_of(config))
  return tuple(p for p, weight in enumerate(weights) if weight > 0)


def input_shape_of(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
  """One model input: the grid image (H, W, 3), or (P, H, W, 3) for a fused sample."""
  rows, cols, tile = config.data.grid_rows, config.data.grid_cols, config.data.tile_size
  pathways = num_pathways_of(config)
  return ((pathways,) if pathways else ()) + (rows * tile, cols * tile, 3)
