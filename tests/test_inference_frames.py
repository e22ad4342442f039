"""Inference reads only the frames its views use: the same grids as decoding every frame, bit for bit."""

import pathlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from scfa_jax import config as base_config
from scfa_jax.datasets import video_io
from scfa_jax.inference import video
from scfa_jax.inference import views
from tests.video_fixtures import write_video

SAMPLES = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'real_samples'
# Real clips: HMDB51 ones whose containers state 48 frames for 40 and 427 for 430 (a second pass each),
# and a UCF101 one whose count is right.
REAL = ['hmdb51/videos/Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2.avi',
        'hmdb51/videos/KOREAN_TEA_CEREMONY_-_Simple_Demo_pour_u_nm_np1_fr_med_0.avi',
        'ucf101/videos/v_ApplyEyeMakeup_g01_c01.avi']


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
  """Fixture clips (lossless and MPEG-4, large and small frames, short and long) and the real sample clips found."""
  folder = tmp_path_factory.mktemp('frames')
  paths = [write_video(folder / 'large.avi', 37, width=96, height=72, fourcc='FFV1'),
           write_video(folder / 'small.avi', 5, seed=1), write_video(folder / 'tiny.avi', 23, width=24, height=24)]
  return [str(p) for p in paths] + [str(SAMPLES / p) for p in REAL if (SAMPLES / p).is_file()]


def _config(dataset, num_clips, local_views, fused):
  config = base_config.get_config()
  config.data.update(name=dataset, grid_rows=2, grid_cols=2, tile_size=8, local_grid=1, local_frames_stride=2)
  config.eval.update(num_test_clips=num_clips, local_views=0 if fused else local_views)
  if fused:
    config.data.update(num_local_views=local_views, fuse_local_views=True)
  return config


@pytest.mark.slow(seconds=12)
@pytest.mark.parametrize('dataset,layouts', [
    ('ucf101_manual', [(1, 0, False), (3, 0, False), (2, 2, False), (2, 1, True)]),  # frames squashed to 56 px
    ('synthetic_motion', [(2, 2, False)])])  # small frames kept at their size
def test_reading_only_used_frames_gives_the_full_decodes_grids(clips, dataset, layouts):
  """Every view layout: one grid, several test clips, local views, fused samples."""
  stored = video.storage(_config(dataset, 1, 0, False).data)
  everything = [tf.constant(video.store(video.read(p, stored), stored.jpeg_quality)) for p in clips]  # all frames
  for num_clips, local_views, fused in layouts:
    config = _config(dataset, num_clips, local_views, fused)
    spec = views.ViewSpec.from_config(config)
    make = views.grid_fn(config.data, spec)
    got = views.items(clips, config, spec, jpeg_quality=stored.jpeg_quality)
    for path, item, frames in zip(clips, got, everything):
      np.testing.assert_array_equal(item.grids, make(frames).numpy(), err_msg=f'{path} {num_clips, local_views}')


def test_only_used_frames_are_converted_and_the_file_is_opened_once(clips, monkeypatch):
  opened, converted = [], []
  real_capture, real_convert = cv2.VideoCapture, video_io._to_rgb_small  # pylint: disable=protected-access
  monkeypatch.setattr(cv2, 'VideoCapture', lambda *a: opened.append(a[0]) or real_capture(*a))
  monkeypatch.setattr(video_io, '_to_rgb_small', lambda f, s: converted.append(1) or real_convert(f, s))
  stored = video.storage(_config('ucf101_manual', 1, 0, False).data)
  count, frames = video.read_used(clips[0], stored, lambda n: [0, n // 2, n - 1, n // 2])
  assert count == 37 and sorted(frames) == [0, 18, 36] and len(converted) == 3 and opened == [clips[0]]
  np.testing.assert_array_equal(np.stack(list(frames.values())), video.read(clips[0], stored)[[0, 18, 36]])
  if len(clips) > 3:  # the container states 48 frames, 40 decode: the frames of 40 are read in a second pass
    opened.clear()
    count, frames = video.read_used(clips[3], stored, lambda n: [n - 1])
    assert count == 40 and list(frames) == [39] and len(opened) == 2
  broken = pathlib.Path(clips[0]).with_name('broken.mp4')
  broken.write_bytes(b'\x00' * 100)
  opened.clear()
  with pytest.raises(video.BadVideoError, match='broken.mp4'):
    video.read_used(str(broken), stored, lambda n: [0])
  with pytest.raises(video.BadVideoError, match='broken.mp4'):
    video.read(str(broken), stored)
  assert opened == [str(broken)] * 2  # once per read: FFmpeg's complaints are printed once
