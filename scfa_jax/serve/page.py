"""What the page shows for one uploaded video: its grids, top-k classes, nearest train videos, timeline.

Pure functions of a loaded ``inference.Predictor`` and a file path, so every
value the page shows is tested without a browser. The numbers are the
inference API's own: the video is read once as its dataset stores frames
(``inference.video``), evaluation's grids come from ``inference.views``,
class probabilities from ``Predictor.outputs`` and ``Predictor.probabilities``,
neighbours from ``inference.index.nearest`` over the train split evaluation
embedded, and the timeline plot from ``inference.timeline``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
import time
from typing import Optional, Sequence

import numpy as np

from scfa_jax import errors
from scfa_jax.inference import index as index_lib
from scfa_jax.inference import timeline as timeline_lib
from scfa_jax.inference import video as video_lib
from scfa_jax.inference import views as views_lib

DISPLAY_SIDE = 192  # grids are enlarged (nearest pixel) to at least this height, so a browser does not blur them

Captioned = tuple[np.ndarray, str]  # an RGB uint8 image and its caption


@dataclasses.dataclass
class Answer:
  """Everything the page shows for one video; ``message`` is set (and the rest empty) when it could not be read."""

  video: str
  message: str = ''
  head: str = ''
  top_k: dict[str, float] = dataclasses.field(default_factory=dict)  # class -> probability, most probable first
  views: list[Captioned] = dataclasses.field(default_factory=list)  # the images the network sees
  neighbours: list[Captioned] = dataclasses.field(default_factory=list)  # nearest train videos, most similar first
  similarities: list[float] = dataclasses.field(default_factory=list)
  num_frames: int = 0
  duration_s: float = 0.0
  timeline: Optional[timeline_lib.Timeline] = None  # for a video longer than one window
  timeline_png: Optional[str] = None  # its plot
  timeline_note: str = ''
  seconds: float = 0.0  # time to answer

  @property
  def top1(self) -> str:
    return next(iter(self.top_k), '')


def enlarge(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
  """The image repeated pixel by pixel to at least ``side`` rows (tiles of 8-24 px stay sharp on screen)."""
  factor = max(1, -(-side // image.shape[0]))
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def view_captions(num_clips: int, num_local_views: int, pathways: int) -> list[list[str]]:
  """Captions of each test-time view ([view][pathway]) in ``preprocess_eval``'s order."""
  if pathways > 1:  # fused samples: one global grid and its local views, fused into one feature
    return [[f'sample {v + 1}: global grid'] + [f'sample {v + 1}: local view {p}' for p in range(1, pathways)]
            for v in range(num_clips)]
  clips = [[f'clip {v + 1} of {num_clips}: global grid' if num_clips > 1 else 'global grid'] for v in range(num_clips)]
  return clips + [[f'local view {v + 1}'] for v in range(num_local_views)]


def captioned_views(grids: np.ndarray, num_clips: int, num_local_views: int) -> list[Captioned]:
  """The grids of one video ([V, H, W, 3], or fused [V, P, H, W, 3]), enlarged and captioned."""
  fused = grids.ndim == 5
  captions = view_captions(num_clips, num_local_views, grids.shape[1] if fused else 1)
  images = grids if fused else grids[:, None]
  return [(enlarge(images[v, p]), captions[v][p]) for v in range(len(images)) for p in range(images.shape[1])]


class TrainGrids:
  """Grids of train-split videos by their row in the kNN memory, read from the prepared dataset and kept.

  Rows are read by slicing the split (``train[i:i+1]``), and each one's
  ``video_id`` is checked against the memory's clip id, so a dataset that
  changed since evaluation gives no wrong picture (it is left out, with a warning).
  """

  def __init__(self, config, clip_ids: Sequence[str]):
    self.config = config
    self.clip_ids = [str(c) for c in clip_ids]
    self._cache: dict[int, np.ndarray] = {}
    self._builder = None
    self._unavailable = False
    self._make = views_lib.grid_fn(config.data, views_lib.ViewSpec(1, 0))

  def _open(self):
    if self._builder is None and not self._unavailable:
      from scfa_jax import datasets  # pylint: disable=g-import-not-at-top
      try:
        self._builder = datasets.get_builder(self.config.data)
      except Exception as e:  # pylint: disable=broad-except  (pictures are optional; the similarities stand)
        logging.warning('The train split is not readable here (%s): neighbours are shown without pictures.', e)
        self._unavailable = True
    return self._builder

  def get(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
    """{row: uint8 grid [H, W, 3]} of the rows that could be read."""
    missing = sorted({int(r) for r in rows} - set(self._cache))
    builder = self._open() if missing else None
    if builder is not None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      split = '+'.join(f'{self.config.data.train_split}[{r}:{r + 1}]' for r in missing)
      try:
        dataset = builder.as_dataset(split=split, shuffle_files=False,
                                     decoders={self.config.data.frames_key: tfds.decode.SkipDecoding()})
        for example in dataset:
          clip_id = example['video_id'].numpy().decode() if 'video_id' in example else None
          row = self.clip_ids.index(clip_id) if clip_id in self.clip_ids else None
          if row is None:
            continue
          grid = self._make(example[self.config.data.frames_key]).numpy()[0]
          self._cache[row] = grid[0] if grid.ndim == 4 else grid  # fused: the global grid
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('Could not read train videos %s: %s', missing, e)
    return {r: self._cache[r] for r in rows if r in self._cache}


class Page:
  """A loaded workdir and what the page needs beside it: the train-split index and its grids."""

  def __init__(self, predictor, *, top_k: int = 5, k: int = 5):
    self.predictor = predictor
    self.top_k = top_k
    self.k = k
    memory = predictor.heads.memory if predictor.heads is not None else None
    self.index = (index_lib.from_memory(memory.clip_ids, memory.labels, memory.features, predictor.class_names)
                  if memory is not None else None)
    self.train_grids = TrainGrids(predictor.config, memory.clip_ids) if memory is not None else None
    self.lock = threading.Lock()  # one answer at a time: the model and its compiled steps are shared
    self.out_dir = tempfile.mkdtemp(prefix='scfa_serve_')

  @classmethod
  def from_workdir(cls, workdir: str, *, step: Optional[int] = None, **kwargs) -> 'Page':
    from scfa_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    return cls(Predictor.from_workdir(workdir, step=step), **kwargs)

  def warm_up(self) -> float:
    """Compiles every batch shape an answer can run in, then answers a 3-second noise clip; returns the seconds.

    Batches are padded to powers of two (``views.padded_size``), and a timeline's
    last batch may be any of them, so each is compiled once here rather than
    during a visitor's first answers.
    """
    import jax  # pylint: disable=g-import-not-at-top
    from scfa_jax.serve import examples  # pylint: disable=g-import-not-at-top
    start = time.perf_counter()
    p = self.predictor
    frames = np.random.default_rng(0).integers(0, 256, (int(3 * examples.FPS), 64, 64, 3), dtype=np.uint8)
    path = examples.write_clip(frames, os.path.join(self.out_dir, 'warm_up.webm'))
    grid = self._grids(frames)[0]
    sizes = {views_lib.padded_size(n, p.batch_size, jax.local_device_count()) for n in range(1, p.batch_size + 1)}
    models = {p.model_of(h) for h in p.available_heads()} | {'encoder'}
    for size in sorted(sizes):
      for which in sorted(models):
        p.run_grids(np.zeros((size,) + grid.shape, np.uint8), which)
    answer = self.answer(path, window_s=1.0, stride_s=0.5)
    os.remove(path)
    if answer.message:
      raise RuntimeError(f'warm-up failed: {answer.message}')
    return time.perf_counter() - start

  def heads(self) -> list[str]:
    return self.predictor.available_heads()

  def describe(self) -> str:
    """One line about the model: workdir, step, dataset, classes."""
    p = self.predictor
    names = p.class_names or []
    shown = ', '.join(names[:12]) + (f', ... ({len(names)} classes)' if len(names) > 12 else '')
    return (f'{p.workdir} (step {p.encoder.step}, {p.config.data.name}): {shown or "no class names"}; '
            f'{p.views.per_video} test-time view(s) per video.')

  def answer(self, path: Optional[str], head: Optional[str] = None, *, window_s: float = 2.0,
             stride_s: float = 1.0) -> Answer:
    """The page's values for the video at ``path``; a user's mistake comes back as ``Answer.message``."""
    if not path:
      return Answer(video='', message='Drop a video file here or pick an example.')
    start = time.perf_counter()
    try:
      with self.lock:
        found = self._answer(os.fspath(path), head, window_s=window_s, stride_s=stride_s)
    except errors.UserError as e:
      return Answer(video=os.fspath(path), message=str(e).replace(os.fspath(path), os.path.basename(path)))
    found.seconds = time.perf_counter() - start
    return found

  def _answer(self, path: str, head: Optional[str], *, window_s: float, stride_s: float) -> Answer:
    p = self.predictor
    head = p.resolve_head(head) if p.available_heads() or head else None
    frames = video_lib.read(path, video_lib.storage(p.config.data))
    fps = video_lib.frame_rate(path)
    if fps <= 0:
      fps = timeline_lib.DEFAULT_FPS
    spans = timeline_lib.windows(len(frames), fps, window_s, stride_s)
    clips = [frames] + ([frames[a:b] for a, b in spans] if len(spans) > 1 else [])
    grids = [self._grids(clip) for clip in clips]
    encoder = self._outputs(grids, 'encoder')
    model = encoder if head is None or p.model_of(head) == 'encoder' else self._outputs(grids, p.model_of(head))
    answer = Answer(video=path, head=head or '', num_frames=len(frames), duration_s=len(frames) / fps)
    if head is not None:
      probs = p.probabilities(model[0], head)
      order = np.argsort(-probs, kind='stable')[:self.top_k]
      answer.top_k = {p.class_names[i]: float(probs[i]) for i in order}
    answer.views = captioned_views(grids[0], p.views.num_clips, p.views.num_local_views)
    if self.index is not None:
      self._neighbours(answer, encoder[0]['features'])
    if len(spans) > 1 and head is not None:
      # timeline.score's windows and classification, on the frames already read (the file is read once).
      found = answer.timeline = timeline_lib.Timeline(video=path, head=head, class_names=list(p.class_names),
                                    starts=np.asarray([a / fps for a, _ in spans]),
                                    ends=np.asarray([b / fps for _, b in spans]),
                                    probabilities=np.asarray([p.probabilities(v, head) for v in model[1:]]))
      answer.timeline_png = os.path.join(self.out_dir, f'timeline_{time.monotonic_ns()}.png')
      timeline_lib.plot(found, answer.timeline_png)
      answer.timeline_note = f'{len(spans)} windows of {window_s:g} s every {stride_s:g} s ({head}).'
    else:
      answer.timeline_note = (f'{answer.duration_s:.1f} s: not longer than one window of {window_s:g} s, '
                              'so no timeline (lower the window to get one).')
    return answer

  def _grids(self, frames: np.ndarray) -> np.ndarray:
    """Evaluation's views of one video's frames, [V, H, W, 3] (fused: [V, P, H, W, 3]), as ``inference.views``
    makes them, through the predictor's tiler (traced once for the page's life; a new one per call: 1-7 s)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return self.predictor.tiler.make(tf.constant(video_lib.store(frames, self.predictor.jpeg_quality))).numpy()

  def _outputs(self, grids: Sequence[np.ndarray], which: str) -> list[dict[str, np.ndarray]]:
    """Each video's view-averaged model outputs, batched and padded as ``Predictor.outputs`` does."""
    import jax  # pylint: disable=g-import-not-at-top
    p = self.predictor
    per_video = p.views.per_video
    videos_per_batch = max(1, p.batch_size // per_video)
    found = []
    for start in range(0, len(grids), videos_per_batch):
      batch = [views_lib.Item(i, '', grids=g) for i, g in enumerate(grids[start:start + videos_per_batch])]
      images, _ = views_lib.stack(batch, p.batch_size, jax.local_device_count())
      out = p.run_grids(images, which)
      found += [{k: v[i * per_video:(i + 1) * per_video].mean(axis=0) for k, v in out.items()
                 if k in ('features', 'logits')} for i in range(len(batch))]
    return found

  def _neighbours(self, answer: Answer, features: np.ndarray) -> None:
    rows, sims = index_lib.nearest(self.index.features, features[None], k=self.k)
    grids = self.train_grids.get(rows[0].tolist())
    blank = np.full_like(answer.views[0][0], 255)
    for row, sim in zip(rows[0].tolist(), sims[0].tolist()):
      caption = f'{sim:.3f} {self.index.labels[row]} ({self.index.names[row]})'
      answer.neighbours.append((enlarge(grids[row]) if row in grids else blank, caption))
      answer.similarities.append(float(sim))
