"""The JSON Schema of ``<workdir>/results.json``: one layout for every protocol.

Every protocol reports ``{"single_view": metrics, "averaged": metrics | null}``
under ``protocols``: single_view scores one deterministic grid per test video,
averaged the mean over ``num_test_clips`` temporal views (null when that is 1).
Classification protocols share one metrics object, retrieval has its own. The
headline single-view accuracies are repeated at the top level
(``<protocol>_top1``) for scripts that only want one number.

``evaluate`` validates every results dict against this schema before writing
it, so a file on disk always matches the documentation.
"""

from __future__ import annotations

from typing import Any

import jsonschema

SCHEMA_VERSION = 1

CLASSIFICATION_PROTOCOLS = {
    'linear_probe': 'Logistic regression on frozen encoder features of the train split.',
    'knn': 'Cosine kNN (similarity-weighted vote) with the train split as memory.',
    'classifier': "The trained model's own classifier head (cross-entropy baseline only).",
    'finetune': 'Encoder + classifier fine-tuned with cross-entropy on the train split (config.eval.finetune_epochs > 0).',
}

# Keys of `figures` (scfa_jax.evaluation.figures.FIGURES draws them).
FIGURE_NAMES = ('confusion_matrix', 'embedding_map', 'training_curves', 'retrieval_examples', 'robustness')

_FRACTION = {'type': 'number', 'minimum': 0.0, 'maximum': 1.0}

_CLASSIFICATION_METRICS = {
    'type': 'object',
    'required': ['top1', 'per_class_top1', 'confusion_matrix'],
    'additionalProperties': False,
    'properties': {
        'top1': {**_FRACTION, 'description': 'Fraction of test videos classified correctly.'},
        'per_class_top1': {
            'type': 'object',
            'description': 'Accuracy within each true class, keyed by class name; null for a class with no test video.',
            'additionalProperties': {'anyOf': [_FRACTION, {'type': 'null'}]},
        },
        'confusion_matrix': {
            'type': 'array',
            'description': 'Counts [C][C] in class_names order: row = true class, column = predicted class.',
            'items': {'type': 'array', 'items': {'type': 'integer', 'minimum': 0}},
        },
    },
}

_RETRIEVAL_METRICS = {
    'type': 'object',
    'required': ['map', 'num_queries'],
    'additionalProperties': False,
    'patternProperties': {
        r'^recall@[1-9][0-9]*$': {
            **_FRACTION, 'description': 'Fraction of queries with a same-class train video among the k nearest.'},
    },
    'properties': {
        'map': {**_FRACTION, 'description': 'Mean over queries of the average precision of the whole train ranking.'},
        'num_queries': {'type': 'integer', 'minimum': 0,
                        'description': 'Test videos scored (those whose class has train videos).'},
    },
}


def _protocol(metrics: dict[str, Any], description: str) -> dict[str, Any]:
  return {
      'type': 'object',
      'description': description + ' Both views are null, with a reason, when the protocol could not be scored.',
      'required': ['single_view', 'averaged'],
      'additionalProperties': False,
      'properties': {
          'single_view': {'anyOf': [metrics, {'type': 'null'}]},
          'averaged': {'anyOf': [metrics, {'type': 'null'}]},
          'reason': {'type': 'string', 'description': 'Why the protocol could not be scored (e.g. NaN features).'},
      },
  }


RESULTS_SCHEMA: dict[str, Any] = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    'title': 'SCFA evaluation results',
    'type': 'object',
    'required': ['schema_version', 'dataset', 'train_split', 'test_split', 'step', 'num_classes', 'class_names',
                 'num_train', 'num_test', 'chance', 'num_test_clips', 'linear_probe_top1', 'knn_top1', 'knn_k',
                 'protocols', 'settings', 'figures'],
    'additionalProperties': False,
    'properties': {
        'schema_version': {'const': SCHEMA_VERSION},
        'dataset': {'type': 'string', 'description': 'TFDS full name: name/config:version.'},
        'train_split': {'type': 'string', 'description': 'Split the encoder, probe, kNN memory and fine-tuning saw.'},
        'test_split': {'type': 'string', 'description': 'Held-out split every metric is computed on.'},
        'step': {'type': 'integer', 'minimum': 0, 'description': 'Pre-training step of the evaluated checkpoint.'},
        'num_classes': {'type': 'integer', 'minimum': 0, 'description': '0 for a dataset without labels.'},
        'class_names': {'type': 'array', 'items': {'type': 'string'}, 'description': 'Label order of every matrix.'},
        'num_train': {'type': 'integer', 'minimum': 0, 'description': 'Train videos embedded.'},
        'num_test': {'type': 'integer', 'minimum': 0, 'description': 'Test videos scored.'},
        'chance': {**_FRACTION, 'description': 'Majority-class rate of the test split.'},
        'num_test_clips': {'type': 'integer', 'minimum': 1, 'description': 'Temporal views behind "averaged".'},
        'knn_k': {'type': 'integer', 'minimum': 1},
        **{f'{name}_top1': {'anyOf': [_FRACTION, {'type': 'null'}],
                            'description': f'= protocols.{name}.single_view.top1 (null when not scored)'}
           for name in CLASSIFICATION_PROTOCOLS},
        'protocols': {
            'type': 'object',
            'required': ['linear_probe', 'knn'],
            'additionalProperties': False,
            'properties': {
                **{name: _protocol(_CLASSIFICATION_METRICS, text) for name, text in CLASSIFICATION_PROTOCOLS.items()},
                'retrieval': _protocol(_RETRIEVAL_METRICS, 'Test videos as queries against the train split '
                                       '(cosine on encoder features); absent when config.eval.retrieval_ks is empty.'),
            },
        },
        'settings': {
            'type': 'object',
            'description': 'The evaluation settings that produced these numbers.',
            'required': ['embedding', 'knn_temperature', 'linear_probe_c', 'retrieval_ks', 'finetune_epochs',
                         'finetune_learning_rate', 'finetune_steps', 'classifier_hidden_dim'],
            'additionalProperties': False,
            'properties': {
                'embedding': {'const': 'features', 'description': 'Probe, kNN and retrieval use pooled encoder features.'},
                'knn_temperature': {'type': 'number', 'exclusiveMinimum': 0},
                'linear_probe_c': {'type': 'number', 'exclusiveMinimum': 0},
                'retrieval_ks': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}},
                'finetune_epochs': {'type': 'integer', 'minimum': 0},
                'finetune_learning_rate': {'type': 'number', 'minimum': 0},
                'finetune_steps': {'type': 'integer', 'minimum': 0, 'description': '0 when fine-tuning is off.'},
                'classifier_hidden_dim': {'type': 'integer', 'minimum': 0,
                                          'description': 'Hidden ReLU layer of the classifier head; 0 = linear.'},
                'per_frame': {'type': 'boolean',
                              'description': 'TSN baseline: features and class scores are means over frames '
                                             'encoded one by one (absent in results of older versions).'},
                'local_views': {'type': 'integer', 'minimum': 0,
                                'description': 'Local views averaged into the "averaged" entries beside the '
                                               'num_test_clips global ones (absent in older results).'},
                'fused_pathways': {'type': 'integer', 'minimum': 0,
                                   'description': 'P > 0: every view scored is a fused sample of 1 global grid '
                                                  'and P-1 local views (data.fuse_local_views); 0 = unfused '
                                                  '(absent in older results).'},
            },
        },
        'labels': {
            'type': 'object',
            'description': 'The labels the probe, kNN, retrieval and fine-tuning read (config.data.label_fraction); '
                           'absent in results of older versions.',
            'required': ['available', 'fraction', 'seed', 'num_labelled', 'num_train'],
            'additionalProperties': False,
            'properties': {
                'available': {'type': 'boolean', 'description': 'False: the dataset has no labels (nothing scored).'},
                'fraction': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 1},
                'seed': {'type': 'integer', 'description': 'config.seed, which drew the stratified fraction.'},
                'num_labelled': {'type': 'integer', 'minimum': 0, 'description': 'Train videos whose labels were read.'},
                'num_train': {'type': 'integer', 'minimum': 0, 'description': 'Train videos embedded.'},
                'min_per_class': {'type': 'integer', 'minimum': 0, 'description': 'Fewest labelled videos of a class.'},
                'reason': {'type': 'string', 'description': 'Why nothing was scored (no labels).'},
            },
        },
        'figures': {
            'type': 'object',
            'description': 'PNG files written, relative to the workdir (empty when config.eval.plots is off).',
            'additionalProperties': False,
            'properties': {name: {'type': 'string', 'pattern': r'\.png$'}
                           for name in FIGURE_NAMES},
        },
        'robustness': {
            'type': 'object',
            'description': 'config.eval.robustness: perturbation -> setting -> protocol -> top-1 on the perturbed '
                           'test split (probe and kNN fitted on the clean train split; null if not scorable).',
            'additionalProperties': {
                'type': 'object',
                'additionalProperties': {
                    'type': 'object',
                    'required': ['linear_probe', 'knn'],
                    'additionalProperties': False,
                    'properties': {p: {'anyOf': [_FRACTION, {'type': 'null'}]} for p in ('linear_probe', 'knn')},
                },
            },
        },
        'compute': {
            'anyOf': [{'type': 'null'}, {
                'type': 'object',
                'description': 'Inference forward compute (XLA cost analysis; a multiply-add counts 2 FLOPs).',
                'required': ['forward_gflops_per_image', 'image_shape', 'images_per_video',
                             'forward_gflops_per_video'],
                'additionalProperties': False,
                'properties': {
                    'forward_gflops_per_image': {'type': 'number', 'minimum': 0},
                    'image_shape': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}},
                    'images_per_video': {'type': 'object', 'additionalProperties': {'type': 'integer', 'minimum': 1}},
                    'forward_gflops_per_video': {'type': 'object', 'additionalProperties': {'type': 'number'}},
                },
            }],
        },
        'figure_errors': {
            'type': 'object',
            'description': 'Figures that could not be drawn -> the reason (absent when all were drawn).',
            'additionalProperties': False,
            'properties': {name: {'type': 'string'} for name in FIGURE_NAMES},
        },
    },
}


def validate(results: dict[str, Any]) -> None:
  """Raises ``jsonschema.ValidationError`` (naming the offending key) unless ``results`` fits the schema."""
  jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(results)
