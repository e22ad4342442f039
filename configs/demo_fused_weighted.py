r"""configs/demo_fused.py with the two weights that helped on both synthetic datasets (docs/multiscale.md).

  python -m scfa_jax.main --config=configs/demo_fused_weighted.py --workdir=/tmp/scfa_demo_fused_weighted \
      --config.data.name=synthetic_detail

The same fused sample (the global grid + one local view, one shared ResNet,
concatenated), plus:

* the global grid's own SupCon term at weight 0.5, through a projection head
  of its own (``loss.pathway_aux_weight=0.5``), and none for the local view
  (``loss.local_aux_weight=0``): the grid is asked to carry what it can see on
  its own, as in the paper's recipe; a local view asked to carry the class
  alone gets an impossible task wherever its few frames do not show it;
* the local view's features at half weight in the video feature
  (``model.local_feature_weight=0.5``): SupCon reaches the feature only
  through the projection head, which absorbs any fixed scale of a half, so
  only this weight sets how much the local half counts in the cosine
  similarities that kNN and retrieval read. Where the local view sees nothing
  of the class (``synthetic_motion``), its half adds noise to them.

The heads are training-only; compute per video is demo_fused's. Run from the
repository root (it imports configs/demo_fused.py).
"""

from configs import demo_fused


def weigh_pathways(config):
  """The global grid's own SupCon term (0.5, none for local views) and the local features at half weight."""
  config.loss.pathway_aux_weight = 0.5
  config.loss.local_aux_weight = 0.0
  config.model.local_feature_weight = 0.5
  return config


def get_config():
  return weigh_pathways(demo_fused.get_config())
