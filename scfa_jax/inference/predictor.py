"""``Predictor``: a trained workdir as a function from videos to embeddings and class probabilities.

    from scfa_jax.inference import Predictor
    predictor = Predictor.from_workdir('/tmp/scfa_demo')
    predictor.classify(['clip.mp4'], top_k=3)   # [Prediction(video='clip.mp4', classes=[...], ...)]
    predictor.embed(['clip.mp4', frames])        # [2, D] encoder features

Everything numeric is evaluation's own code: frames stored as the dataset stores
them (JPEG, ``inference.video.store``), grids from ``input_pipeline.preprocess_eval``
(``inference.views``), features from ``steps.embed_step`` pmapped over the
local devices (``training.parallel``), averaged over the test-time views as
evaluation averages them, and the heads evaluation fitted (``evaluation.heads``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import ml_collections
import numpy as np
from flax import struct

from scfa_jax import datasets
from scfa_jax import errors
from scfa_jax.evaluation import heads as heads_lib
from scfa_jax.inference import video as video_lib
from scfa_jax.inference import views as views_lib
from scfa_jax.inference import workdir as workdir_lib
from scfa_jax.training import parallel
from scfa_jax.training import steps

HEADS = ('finetune', 'classifier', 'probe', 'knn')  # the default is the first one available


class HeadError(errors.ConfigError):
  """A head the workdir does not have."""


@struct.dataclass
class InferenceState:
  """What ``steps.embed_step`` reads of a train state."""

  params: Any
  batch_stats: Any
  apply_fn: Callable[..., Any] = struct.field(pytree_node=False)


@dataclasses.dataclass(frozen=True)
class Prediction:
  """The top-k classes of one video, most probable first."""

  video: str
  classes: list[str]
  probabilities: list[float]
  head: str

  def to_json(self) -> dict[str, Any]:
    return {'video': self.video, 'head': self.head,
            'top_k': [{'class': c, 'probability': p} for c, p in zip(self.classes, self.probabilities)]}


@dataclasses.dataclass
class Outputs:
  """One video's view-averaged model outputs ('features', 'logits' if any), or why it was not embedded."""

  index: int
  name: str
  values: Optional[dict[str, np.ndarray]] = None
  error: Optional[Exception] = None


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


class Predictor:
  """Embeds and classifies videos as evaluation would have, on every local device."""

  def __init__(self, config: ml_collections.ConfigDict, encoder: workdir_lib.Model, *, preprocessing_mode: str,
               class_names: Optional[Sequence[str]], heads: Optional[heads_lib.Heads] = None,
               finetune_dir: Optional[str] = None, workdir: Optional[str] = None, batch_size: Optional[int] = None,
               single_view: bool = False, threads: int = 4, storage_round_trip: bool = True,
               max_wait_s: float = 2.0, heads_step: Optional[int] = None):
    """``storage_round_trip``: store every video's frames as its dataset does (JPEG) before tiling, so files
    and frame arrays get evaluation's grids; turn it off for frames already decoded from the dataset.
    ``max_wait_s``: a batch runs once its first video has waited this long, even if not full (so
    :meth:`outputs` yields every few seconds on slow decoding). ``heads_step``: the step of saved heads
    that were not used (another step was restored), for the message of :meth:`resolve_head`."""
    self.config = config
    self.encoder = encoder
    self.preprocessing_mode = preprocessing_mode
    self.class_names = list(class_names) if class_names else None
    self.heads = heads
    self.workdir = workdir
    self.views = views_lib.ViewSpec.from_config(config, single_view=single_view)
    self.batch_size = batch_size or int(config.eval.batch_size)
    self.threads = threads
    self.max_wait_s = max_wait_s
    self.jpeg_quality = datasets.frame_storage(config.data).jpeg_quality if storage_round_trip else None
    self._finetune_dir = finetune_dir
    self.heads_step = heads_step
    self._finetuned: Optional[workdir_lib.Model] = None
    self._compiled: dict[str, tuple[Any, Any]] = {}
    self._tiler: Optional[views_lib.Tiler] = None

  @property
  def tiler(self) -> views_lib.Tiler:
    """This predictor's frames -> grids (traced on first use, then reused by every call)."""
    if self._tiler is None:
      self._tiler = views_lib.Tiler.build(self.config.data, self.views)
    return self._tiler

  @classmethod
  def from_workdir(cls, workdir: str, step: Optional[int] = None, **kwargs: Any) -> 'Predictor':
    """Loads ``config.json``, the newest intact checkpoint (or ``step``) and the heads evaluation saved.

    A workdir without saved heads still embeds (and classifies with the
    classifier of a cross-entropy model); asking it for a head names the
    ``--mode=eval`` command that writes them.
    """
    config = workdir_lib.load_config(workdir)
    names = workdir_lib.class_names(workdir)
    try:
      heads = heads_lib.load(workdir)
    except heads_lib.NoHeadsError:
      heads = None
    encoder = workdir_lib.restore_encoder(workdir, config, step=step, num_classes=len(names or ()))
    heads_step = None
    if heads is not None and heads.meta['step'] != encoder.step:
      logging.warning('The saved heads belong to step %d, not to the restored step %d: the probe, kNN and fine-tune '
                      'are not used with it (embedding is unaffected).', heads.meta['step'], encoder.step)
      heads, heads_step = None, int(heads.meta['step'])
    mode = heads.meta['preprocessing_mode'] if heads else _preprocessing(config)
    return cls(config, encoder, preprocessing_mode=mode, class_names=names, heads=heads,
               finetune_dir=heads.meta.get('finetune_dir') if heads else None, workdir=workdir,
               heads_step=heads_step, **kwargs)

  # ----- model outputs -----

  def _runner(self, which: str):
    """(pmapped embed_step, replicated state) of the 'encoder' or the 'finetune' model, built once."""
    if which not in self._compiled:
      model = self.encoder if which == 'encoder' else self.finetuned()
      state = InferenceState(params=model.variables['params'], batch_stats=model.variables['batch_stats'],
                             apply_fn=model.model.apply)
      step = parallel.pmap_step(functools.partial(steps.embed_step, preprocessing_mode=self.preprocessing_mode),
                                donate_state=False)
      self._compiled[which] = (step, parallel.replicate(state))
    return self._compiled[which]

  def finetuned(self) -> workdir_lib.Model:
    """The fine-tuned model (restored on first use)."""
    if self._finetuned is None:
      self._finetuned = workdir_lib.restore_finetuned(self.workdir, self.config, self._finetune_dir,
                                                      num_classes=len(self.class_names))
    return self._finetuned

  def run_grids(self, images: np.ndarray, which: str = 'encoder') -> dict[str, np.ndarray]:
    """Model outputs of a uint8 grid batch [B, H, W, 3] (B a multiple of the local device count)."""
    step, state = self._runner(which)
    return jax.tree.map(parallel.unshard, step(state, parallel.shard_batch({'image': images})))

  def outputs(self, videos: Sequence[video_lib.Video], which: str = 'encoder') -> Iterator[Outputs]:
    """Each video's view-averaged outputs in order; unreadable videos yield their error and the rest go on."""
    per_video = self.views.per_video
    stream = views_lib.items(videos, self.config, self.views, threads=self.threads, jpeg_quality=self.jpeg_quality,
                             tiler=self.tiler)
    for batch in views_lib.batches(stream, max(1, self.batch_size // per_video), max_wait_s=self.max_wait_s):
      if batch[0].error is not None:
        yield Outputs(batch[0].index, batch[0].name, error=batch[0].error)
        continue
      images, _ = views_lib.stack(batch, self.batch_size, jax.local_device_count())
      out = self.run_grids(images, which)
      for i, item in enumerate(batch):
        rows = slice(i * per_video, (i + 1) * per_video)
        yield Outputs(item.index, item.name, values={k: v[rows].mean(axis=0) for k, v in out.items()
                                                     if k in ('features', 'logits')})

  def _all(self, videos: Sequence[video_lib.Video], which: str) -> list[dict[str, np.ndarray]]:
    results = []
    for out in self.outputs(videos, which):
      if out.error is not None:
        raise out.error
      results.append(out.values)
    return results

  # ----- the API -----

  def embed(self, videos: Sequence[video_lib.Video]) -> np.ndarray:
    """[N, D] float32 encoder features, one per video (what evaluation's probe, kNN and retrieval use).

    Raises:
      video.BadVideoError: a video that cannot be read (use :meth:`outputs` to skip such videos).
    """
    videos = _as_list(videos)
    return np.stack([v['features'] for v in self._all(videos, 'encoder')]) if videos else np.zeros((0, 0))

  def available_heads(self) -> list[str]:
    """The heads this workdir can classify with, best first."""
    found = []
    if self.heads is not None and self._finetune_dir:
      found.append('finetune')
    if self.config.loss.name == 'cross_entropy' and self.class_names:
      found.append('classifier')
    if self.heads is not None and self.heads.probe is not None:
      found.append('probe')
    if self.heads is not None and self.heads.memory is not None:
      found.append('knn')
    return found

  def resolve_head(self, head: Optional[str]) -> str:
    available = self.available_heads()
    if head is not None and head not in HEADS:
      raise HeadError(f'--head={head!r} is not a head; expected one of {HEADS}.')
    if not self.class_names:
      where = self.workdir or 'this workdir'
      raise HeadError(f'{where} was trained and evaluated without labels: classifying needs a head fitted on '
                      'labels (embed and search work). Train one from it on labelled videos with '
                      f'--config.model.init_from={where} (docs/semi_supervised.md).')
    if not available or (head is not None and head not in available):
      where = self.workdir or 'this workdir'
      if self.heads is None and self.heads_step is not None:
        raise heads_lib.NoHeadsError(
            f'{where} has saved heads for step {self.heads_step} only, not for step {self.encoder.step}: evaluation '
            f'fits heads for the newest checkpoint it finds (--mode=eval takes no step). Classify with step '
            f'{self.heads_step} (drop --step), or evaluate a copy holding only step {self.encoder.step}: '
            f'{heads_for_step_command(where, self.encoder.step)}')
      if self.heads is None:
        raise heads_lib.NoHeadsError(
            f'{where} has no saved heads to classify with (evaluated before they were saved). Write them with '
            f'python -m scfa_jax.main --mode=eval --workdir={where} --config=<the config it was trained with>.')
      raise HeadError(f'{where} has no {head!r} head; it has {", ".join(available) or "none"}.')
    return head or available[0]

  def probabilities(self, values: dict[str, np.ndarray], head: str) -> np.ndarray:
    """[C] class probabilities of one video's outputs (of the model ``head`` runs: see :meth:`model_of`)."""
    num_classes = len(self.class_names)
    if head in ('finetune', 'classifier'):
      return _softmax(values['logits'])
    features = values['features'][None]
    if head == 'probe':
      return self.heads.probe.predict_proba(features, num_classes)[0]
    return self.heads.memory.knn_proba(features, num_classes)[0]

  @staticmethod
  def model_of(head: str) -> str:
    return 'finetune' if head == 'finetune' else 'encoder'

  def predict(self, values: dict[str, np.ndarray], name: str, head: str, top_k: int) -> Prediction:
    p = self.probabilities(values, head)
    order = np.argsort(-p, kind='stable')[:max(1, top_k)]
    return Prediction(video=name, classes=[self.class_names[i] for i in order],
                      probabilities=[float(p[i]) for i in order], head=head)

  def classify(self, videos: Sequence[video_lib.Video], top_k: int = 5, head: Optional[str] = None) -> list[Prediction]:
    """The ``top_k`` classes of each video with their probabilities.

    Args:
      videos: file paths (anything OpenCV reads) or uint8 frame arrays [T, H, W, 3].
      top_k: classes per video.
      head: 'finetune', 'classifier' (a cross-entropy model's own), 'probe' or
        'knn'; default the best available, in that order.
    """
    head = self.resolve_head(head)
    videos = _as_list(videos)
    return [self.predict(v, name, head, top_k)
            for v, name in zip(self._all(videos, self.model_of(head)), video_lib.names(videos))]


def heads_for_step_command(workdir: str, step: int) -> str:
  """Shell commands that fit heads for checkpoint ``step`` of ``workdir`` in a copy (evaluation takes the newest)."""
  copy = f'{workdir.rstrip(os.sep)}_step{step}'
  return (f'mkdir -p {copy}/checkpoints && cp {workdir}/config.json {copy}/ && cp -r {workdir}/checkpoints/{step} '
          f'{copy}/checkpoints/ && python -m scfa_jax.main --mode=eval --workdir={copy} '
          f'--config=<the config it was trained with>, then predict with --workdir={copy}.')


def _as_list(videos: Any) -> list[video_lib.Video]:
  if isinstance(videos, (str, os.PathLike)) or (isinstance(videos, np.ndarray) and videos.ndim in (3, 4)):
    raise TypeError('Pass a list of videos (file paths or frame arrays), e.g. classify([path]).')
  return list(videos)


def _preprocessing(config: ml_collections.ConfigDict) -> str:
  from scfa_jax.training import init_from  # pylint: disable=g-import-not-at-top  (only without saved heads)
  return init_from.preprocessing(config)  # as training resolved it, through a chain of workdirs too
