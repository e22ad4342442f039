r"""configs/demo_fused.py plus an auxiliary SupCon term per pathway (``loss.pathway_aux_weight``).

  python -m scfa_jax.main --config=configs/demo_fused_aux.py --workdir=/tmp/scfa_demo_fused_aux \
      --config.data.name=synthetic_detail

Each pathway's pooled feature (the global grid's, the local view's) also goes
through a projection head of its own, and its SupCon term over the same two
samplings is added with weight 0.5 (two pathways: as much weight as the fused
term). The video feature the evaluation sees is unchanged (the concatenation).
Measured against demo_fused in docs/multiscale.md. Run from the repository
root (it imports configs/demo_fused.py).
"""

from configs import demo_fused


def get_config():
  config = demo_fused.get_config()
  config.loss.pathway_aux_weight = 0.5
  return config
