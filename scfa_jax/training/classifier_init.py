"""``model.classifier_init='probe'``: a classifier starts as the linear probe of the frozen encoder (LP-FT).

Why: a fresh classifier's first gradients are large and random, and with few
labels they reshape a pre-trained encoder before the head is any good
(Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features"). On
synthetic_detail with 1% of the labels, fine-tuning a self-supervised encoder
from a fresh head scored below the frozen encoder's probe
(docs/semi_supervised.md). Fitting the probe first and starting the classifier
from it, fine-tuning begins where the probe ends.

The probe is evaluation's (``evaluation.linear_probe``: standardised features,
L-BFGS logistic regression, ``eval.linear_probe_c``), fitted on the labelled
train videos only (``data.label_fraction``), one deterministic view each, and
folded into the Dense layer (``heads.LinearProbe.as_dense``). It is fitted once,
before step 0: the checkpoints hold the classifier from then on, so a resumed
run continues exactly.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from scfa_jax.evaluation import embeddings
from scfa_jax.evaluation import heads
from scfa_jax.evaluation import linear_probe
from scfa_jax.training import parallel
from scfa_jax.training import steps

CLASSIFIER = 'classifier'


def is_enabled(model_config: ml_collections.ConfigDict) -> bool:
  return model_config.get('classifier_init', 'random') == 'probe'


def with_probe_classifier(params: dict[str, Any], probe: heads.LinearProbe, num_classes: int) -> dict[str, Any]:
  """``params`` with the classifier replaced by ``probe`` (same logits as the probe on the same features).

  Raises:
    ValueError: ``params`` has no linear classifier of the probe's width.
  """
  dense = probe.as_dense(num_classes)
  current = params.get(CLASSIFIER)
  if current is None or np.shape(current['kernel']) != dense['kernel'].shape:
    raise ValueError(f'the model has no linear classifier of shape {dense["kernel"].shape} to start from the probe '
                     f'(found {None if current is None else np.shape(current["kernel"])})')
  return {**params, CLASSIFIER: {'kernel': dense['kernel'], 'bias': dense['bias']}}


def fit_probe(state: steps.TrainState, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
              preprocessing_mode: str, positions: Optional[np.ndarray]) -> heads.LinearProbe:
  """Embeds the train split with ``state``'s (host) encoder and fits the probe on ``positions`` (None = all)."""
  train = embeddings.extractor(builder, config, preprocessing_mode)(parallel.replicate(state),
                                                                 split=config.data.train_split)
  features, labels = train['features'], train['label']
  if positions is not None:
    features, labels = features[positions], labels[positions]
  fitted = linear_probe.fit(features, labels, c=config.eval.linear_probe_c, max_iter=config.eval.linear_probe_max_iter)
  logging.info('classifier_init=probe: fitted the linear probe on %d labelled %s videos (train accuracy %.1f%%).',
               len(labels), config.data.train_split, 100 * float(np.mean(fitted.predict(features) == labels)))
  return heads.LinearProbe.from_sklearn(fitted)


def initialise(state: steps.TrainState, builder: tfds.core.DatasetBuilder, config: ml_collections.ConfigDict, *,
               preprocessing_mode: str, positions: Optional[np.ndarray], num_classes: int) -> steps.TrainState:
  """The host ``state`` whose classifier starts from the probe of its own encoder."""
  probe = fit_probe(state, builder, config, preprocessing_mode=preprocessing_mode, positions=positions)
  return state.replace(params=with_probe_classifier(dict(state.params), probe, num_classes))
