r"""Kinetics-400 from the official CSVs and your downloaded clips, the paper's recipe scaled to 240k videos.

  python -m scfa_jax.tools.build_dataset --dataset=kinetics --config=k400 \
      --manual_dir=/path/to/kinetics400 --beam_pipeline_options="runner=DirectRunner,direct_num_workers=8"
  python -m scfa_jax.main --config=configs/kinetics400.py --workdir=/tmp/scfa_k400 \
      --config.data.manual_dir=/path/to/kinetics400

Kinetics-600/700: --config.data.builder_config=k600 | k700. ImageNet-pretrained
ResNet-50 (--config.model.init_from=<ported dir>), 16 frames at 56 px in a 4x4
grid, SupCon t=0.07, batch 256, 30 epochs (Kinetics is 25x HMDB51's train split:
fewer passes), evaluated on the validation split (the test CSV's labels are not
used by the usual protocol). Horizontal flips are on: no Kinetics class names a
direction. Clips absent from your download (about a tenth) are left out, up to
30% of a split (docs/scale.md).

Compute estimates (from this project's per-frame figures, not a full run):
- Build: ~240k train + 20k validation clips of ~10 s at 25-30 fps, ~65M frames.
  At 0.7-2.4 ms per frame per core (HMDB-sized to 640x480 sources) that is
  13-43 core-hours: 2-5 hours on one 8-core machine, minutes on a Dataflow job
  of 50 4-core workers. Stored: ~2 KB per 56x56 frame, ~130 GB.
- Training: a 224x224 ResNet-50 step costs ~12 GFLOP per grid (forward +
  backward), 2 grids per video: ~6 PFLOP per epoch, 180 PFLOP for 30 epochs,
  about 3-4 hours on one H100 at 40% of its bf16 peak, if 16+ host cores feed
  it (~1 ms of JPEG decoding per video per core).
"""

from scfa_jax import config as base_config


def get_config():
  config = base_config.get_config()
  config.data.name = 'kinetics'
  config.data.builder_config = 'k400'  # k400 | k600 | k700
  config.data.test_split = 'validation'
  config.data.augment.flip = True
  config.train.batch_size = 256
  config.train.num_epochs = 30
  return config
