"""The configuration schema: every field SCFA reads, with its default.

Config files in ``configs/`` call :func:`get_config` and override a few fields;
notebooks can do the same. The ConfigDict is locked by ``main.py`` so that an
unknown key (a typo on the command line) is an error instead of being ignored.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

# The values enumerated fields take. They live with the schema, which imports neither TensorFlow nor JAX, so that
# ``main`` refuses a bad value in about a second instead of after seconds of imports; the modules that implement
# them take their names from here (ResNet depths: models.resnet.DEPTHS has one entry per depth listed here).
SAMPLING_METHODS = ('segment', 'random_sorted', 'uniform')  # data.train_sampling, data.eval_sampling
RESNET_DEPTHS = (10, 18, 34, 50, 101, 152)  # model.depth
RESNET_VARIANTS = ('v1.5', 'v1')  # model.variant
MOMENTUM_SCHEDULES = ('constant', 'cosine')  # model.momentum_schedule
FUSIONS = ('concat', 'attention')  # model.fusion


def get_config() -> ml_collections.ConfigDict:
  """The paper's recipe: ResNet-50, 16 frames at 56 px in a 4x4 grid, SupCon t=0.07."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds parameter init, view sampling and shuffling.

  config.data = data = ml_collections.ConfigDict()
  data.name = config_dict.placeholder(str)  # Dataset name: see scfa_jax.datasets.BUILDERS, or any TFDS name.
  data.builder_config = ''  # TFDS builder config, e.g. 'split1' for HMDB51 ('' = the builder's default).
  data.data_dir = ''  # Where TFDS keeps prepared datasets ('' = TFDS default, ~/tensorflow_datasets).
  data.manual_dir = ''  # Folder with the files a user downloaded by hand; set to build on first use.
  data.train_split = 'train'  # Split the encoder, probe and kNN memory are trained on.
  data.test_split = 'test'  # Held-out split that accuracies are reported on.
  # Labels read: a stratified, seeded (config.seed) fraction of the train split's videos per class; a supervised
  # loss, the probe, kNN, retrieval and fine-tuning see only those (docs/semi_supervised.md). 1.0 = all.
  data.label_fraction = 1.0
  data.frames_key = 'frames'  # Feature holding the encoded frames ('video' for TFDS' ucf101).
  data.shorter_side = 0  # Real-video builds: >0 stores frames as <px> x <px> squares, as config '<config>_s<px>'; 0 = 56.
  data.max_bad_fraction = 0.01  # Real-video builds fail if more than this fraction of a split cannot be decoded.
  data.max_missing_fraction = config_dict.placeholder(float)  # ... or is absent from the download (None: builder's; Kinetics 0.3, others 0).
  data.grid_rows = 4  # Tiles per column of the grid image (1-8; 1x1 = the single-frame baseline).
  data.grid_cols = 4  # Tiles per row; frames per view = grid_rows * grid_cols.
  data.tile_size = 56  # Side of one tile in pixels; the grid is (rows*tile) x (cols*tile).
  data.train_sampling = 'segment'  # Frame sampling of training views: segment | random_sorted | uniform.
  # Fraction of the video each global training view spans, drawn per view from (min, max), at a random start
  # (CVRL-style temporal crops: the views of a video show overlapping stretches); (1, 1) = the whole video, the paper.
  data.view_span = (1.0, 1.0)
  data.eval_sampling = 'uniform'  # Frame sampling of evaluation views (deterministic).
  data.shuffle_frames = False  # Baseline: destroy temporal order within a view (shuffled-frame grids).
  # Multi-scale views (beyond the paper). Unfused they are training views only: evaluation embeds the global grid.
  data.num_global_views = 2  # Training views per video that spread grid_rows*grid_cols frames over the whole video.
  data.num_local_views = 0  # Extra views of local_grid^2 frames in a row at higher detail (same image size); 0 = paper.
  data.local_grid = 2  # Local views are local_grid x local_grid grids of (grid_rows*tile_size/local_grid) px tiles.
  data.local_frames_stride = 1  # Frames between the tiles of a local view (1 = consecutive frames).
  # False: every global and local view is a SupCon view of its own (the invariance variant). True: one sample of a
  # video is 1 global grid + num_local_views local views, encoded and fused (model.fusion) into ONE video feature;
  # num_global_views samples (2 for SupCon) are drawn independently. Evaluation then embeds fused samples too.
  data.fuse_local_views = False
  data.balanced_batches_per_class = 0  # M > 0: each host's batch is M videos of each of batch/M classes; 0 = shuffled.
  data.shuffle_buffer = 2048  # Videos in the shuffle buffer.
  data.cache = True  # Cache the encoded (still compressed) examples in memory after the first epoch.
  data.preprocessing = 'auto'  # Pixel normalisation: auto (from init_from metadata, else imagenet) | imagenet | caffe | unit.
  data.prefetch_to_device = 2  # Batches staged on the accelerators ahead of the step.
  # Spatial augmentation of training views, one random draw per view shared by its frames; all off = the paper.
  data.augment = aug = ml_collections.ConfigDict()
  aug.random_crop = False  # Random resized crop (Inception-style box), then resize to the tile.
  aug.crop_scale = (0.5, 1.0)  # Range of the crop's area as a fraction of the frame.
  aug.crop_ratio = (3 / 4, 4 / 3)  # Range of the crop's aspect ratio (width / height), drawn log-uniformly.
  aug.crop_local_views = True  # False: local views skip random_crop (its resize blurs the detail they carry).
  aug.flip = False  # Mirror left-right with probability 1/2 (breaks left/right motion classes).
  aug.brightness = 0.0  # Colour jitter as torchvision's ColorJitter: brightness factor uniform in [1-x, 1+x]; 0 = off.
  aug.contrast = 0.0  # Contrast factor uniform in [1-x, 1+x] (about the view's mean grey); 0 = off.
  aug.saturation = 0.0  # Saturation factor uniform in [1-x, 1+x]; 0 = off.
  aug.hue = 0.0  # Hue rotation uniform in [-x, x] turns of the colour wheel (<= 0.5); 0 = off.

  config.model = model = ml_collections.ConfigDict()
  model.depth = 50  # ResNet depth: 10 (tiny, tests), 18, 34, 50, 101 or 152.
  model.width = 64  # Filters of the first stage (64 = standard; small values for CPU demos and tests).
  model.variant = 'v1.5'  # 'v1.5' (torchvision layout) or 'v1' (Keras layout); must match init_from weights.
  model.sync_batch_norm = True  # Average BatchNorm statistics across devices (the global batch).
  model.bn_momentum = 0.9  # BatchNorm running-average momentum.
  model.dtype = 'float32'  # Activation dtype: float32, or bfloat16 on TPU/GPU for speed.
  model.proj_hidden_dim = 2048  # Hidden width of the projection MLP.
  model.proj_dim = 128  # Output width of the projection (unit-normalised).
  model.classifier_hidden_dim = 0  # >0 adds Dense(hidden, relu) before the classifier (CE baseline, fine-tune).
  # How a classifier starts (loss.name='cross_entropy' runs, eval fine-tuning): random | probe (a linear probe
  # fitted on the labelled train videos' frozen features first, LP-FT; docs/semi_supervised.md).
  model.classifier_init = 'random'
  # TSN baseline: each of the grid's rows*cols tiles is a frame encoded on its own; the video's features and
  # class scores are the per-frame averages (segmental consensus). False = SCFA: the grid is one image.
  model.per_frame = False
  model.fusion = 'concat'  # With data.fuse_local_views: concat (pathway features side by side) | attention.
  model.separate_pathways = False  # With data.fuse_local_views: one ResNet per pathway instead of a shared one.
  model.local_feature_weight = 1.0  # Fused concat: the local views' features count this much in the video feature.
  # Momentum (key) encoder, MoCo: an EMA of encoder + projection heads computes the contrasts and fills the queue.
  model.momentum = 0.0  # EMA momentum, in [0, 1) (e.g. 0.99-0.999); 0 = off (contrasts from the trained encoder).
  model.momentum_schedule = 'cosine'  # cosine (from model.momentum up to 1 over training, BYOL/MoCo v3) | constant.
  # Directory written by scfa_jax.tools.port_weights, or a training workdir (its trained encoder: e.g. a
  # self-supervised run to fine-tune on labels, docs/semi_supervised.md); '' = random init.
  model.init_from = ''

  config.loss = loss = ml_collections.ConfigDict()
  loss.name = 'supcon'  # supcon (the method) | cross_entropy (the CE-on-grids baseline).
  loss.temperature = 0.07  # SupCon temperature (paper: 0.07).
  loss.base_temperature = 0.07  # SupCon scales the loss by temperature / base_temperature.
  # Who is a positive: label (SupCon, every same-class view) | video (instance contrast, no labels read: only the
  # other samplings of the same video; everything else in the global batch and the queue is a negative).
  loss.positives = 'label'
  loss.queue_size = 0  # SupCon cross-batch memory: the last K projections of earlier steps as extra contrasts; 0 = off.
  # Fused samples: + weight x the global grid's own SupCon term and each local view's (a head per weighted pathway).
  loss.pathway_aux_weight = 0.0  # 0 = off.
  loss.local_aux_weight = config_dict.placeholder(float)  # The local views' terms' weight; None = pathway_aux_weight.

  # Temporal pretext tasks (data/pretext.py): one more grid per video, its frame indices transformed, and a small
  # head per task on its video feature; each weight multiplies that task's cross-entropy; 0 = off (the default).
  loss.pretext = pretext = ml_collections.ConfigDict()
  pretext.arrow_of_time = 0.0  # Played forwards or backwards?
  pretext.speed = 0.0  # Which playback speed: frames 1..speed_classes apart?
  pretext.shuffle = 0.0  # Frames in order or shuffled?
  pretext.reversed_negatives = False  # With arrow_of_time: backwards-played grids are also negatives of their video.
  # Share of pretext grids played backwards (arrow_of_time). 1.0 with reversed_negatives: every video gets its
  # backwards grid as a hard negative (the arrow task then has one class: its head learns nothing).
  pretext.backwards_share = 0.5
  pretext.speed_classes = 2  # Strides 1..K of the speed task (a video needs (frames per grid - 1) * K + 1 frames).

  config.optim = optim = ml_collections.ConfigDict()
  optim.learning_rate = 1e-4  # Peak Adam learning rate (scaled by nothing; set per batch size).
  optim.warmup_epochs = 1.0  # Linear warm-up before the cosine decay.
  optim.end_learning_rate_factor = 0.0  # Cosine decays to peak * this factor.
  optim.weight_decay = 0.0  # >0 switches Adam to AdamW (decoupled decay).
  optim.grad_clip_norm = 0.0  # >0 clips the global gradient norm.

  config.train = train = ml_collections.ConfigDict()
  train.batch_size = 64  # Global videos per step (each gives data.num_*_views grids); divisible by the device count.
  train.num_epochs = 100  # Passes over the training split.
  train.log_every_steps = 50  # Console/TensorBoard scalars every N steps.
  train.max_steps = -1  # >0 stops after this step (the schedule still spans num_epochs); -1 = train all epochs.
  # A step with a non-finite loss or gradient norm stops the run before anything is saved (False), or its update
  # is dropped and counted as train/skipped_steps (True; rare overflows, e.g. with bfloat16, then do not end a run).
  train.skip_nonfinite_steps = False
  # Data parallelism: pmap (one program per device, training.parallel) | jit (one global program on a device
  # mesh with NamedSharding, training.sharded; the path JAX recommends for new code). Same update either way.
  train.parallelism = 'pmap'

  config.ckpt = ckpt = ml_collections.ConfigDict()
  ckpt.every_steps = 1000  # Save a checkpoint every N steps (and always at the end).
  ckpt.max_to_keep = 3  # Older checkpoints are deleted.

  config.eval = ev = ml_collections.ConfigDict()
  ev.after_training = True  # Evaluate (linear probe, kNN) when training ends.
  ev.batch_size = 64  # Videos per feature-extraction batch (global).
  ev.knn_k = 20  # Neighbours in the cosine kNN classifier.
  ev.knn_temperature = 0.07  # Similarity weighting of kNN votes: exp(sim / t).
  ev.linear_probe_c = 1.0  # Inverse L2 strength of the logistic-regression probe.
  ev.linear_probe_max_iter = 1000  # L-BFGS iterations of the probe.
  ev.num_test_clips = 4  # Test-time averaging over K deterministic temporal views per test video; 1 = single view only.
  ev.local_views = 0  # L > 0 adds L local views (data.local_grid etc., centred runs) to the averaged test views.
  ev.retrieval_ks = (1, 5, 10)  # Recall@k cut-offs of test-vs-train retrieval (with mAP); () skips retrieval.
  ev.finetune_epochs = 0  # Fine-tune encoder + classifier (config.model.classifier_hidden_dim) with CE; 0 = off.
  ev.finetune_learning_rate = 1e-4  # Peak Adam learning rate of fine-tuning (warm-up and cosine as config.optim).
  ev.robustness = False  # Also score probe and kNN on perturbed test videos (dropped frames, speed, cuts, colour).
  ev.plots = True  # Write confusion-matrix, t-SNE embedding-map and training-curve PNGs into the workdir.
  return config
