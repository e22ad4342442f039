r"""Something-Something v2 from the official label JSONs and .webm videos; no horizontal flips.

  python -m scfa_jax.tools.build_dataset --dataset=ssv2 --manual_dir=/path/to/ssv2 \
      --beam_pipeline_options="runner=DirectRunner,direct_num_workers=8"
  python -m scfa_jax.main --config=configs/ssv2.py --workdir=/tmp/scfa_ssv2 \
      --config.data.manual_dir=/path/to/ssv2

174 classes that name directions and relations ("Pushing something from left
to right"): a horizontal flip would swap classes, so it stays off, and the
temporal order the grid keeps is what separates "opening" from "closing".
ImageNet-pretrained ResNet-50 (--config.model.init_from=<ported dir>), 16
frames at 56 px in a 4x4 grid, SupCon t=0.07, batch 256, 30 epochs, evaluated
on the validation split (the test split has no public labels and is not built).

Compute estimates (from this project's per-frame figures, not a full run):
- Build: 193k labelled clips of ~4 s at 12 fps, ~9M frames of 240 px height:
  at ~0.7-1 ms per frame per core, 2-3 core-hours (VP9 decodes slower than
  the DivX of HMDB51; measure on a few hundred clips first). Stored: ~18 GB.
- Training: ~12 GFLOP per 224x224 grid (forward + backward), 2 grids per
  video: ~4 PFLOP per epoch, ~125 PFLOP for 30 epochs, 2-3 hours on one H100 at
  40% of its bf16 peak.
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'ssv2'
  config.data.test_split = 'validation'
  config.data.augment.flip = False  # Classes name directions: a mirror image is another class.
  config.train.batch_size = 256
  config.train.num_epochs = 30
  return config
