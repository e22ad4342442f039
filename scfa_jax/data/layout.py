"""The shape of a view: how many frames, tiled how, at what size (plain Python, no TensorFlow).

Separate from ``views``, which builds the images, so that config checks
(``config_validation``) can ask whether local views fit before TensorFlow is
imported.
"""

from __future__ import annotations

import dataclasses

import ml_collections


@dataclasses.dataclass(frozen=True)
class GridSpec:
  """How a view is aggregated into one image."""

  rows: int
  cols: int
  tile_size: int

  def __post_init__(self):
    if self.rows < 1 or self.cols < 1 or self.tile_size < 1:
      raise ValueError(f'A grid needs rows, cols and tile_size >= 1, '
                       f'got {self.rows}x{self.cols} of {self.tile_size} px.')

  @property
  def num_frames(self) -> int:
    return self.rows * self.cols

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.rows * self.tile_size, self.cols * self.tile_size, 3)

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict) -> 'GridSpec':
    return cls(data_config.grid_rows, data_config.grid_cols, data_config.tile_size)


def local_grid_spec(data_config: ml_collections.ConfigDict) -> GridSpec:
  """The grid of local views: ``local_grid``^2 frames in the global grid's image size.

  Fewer frames at larger tiles keep the image, and so the compute per view,
  what it is for a global view; the global grid must therefore be square.

  Raises:
    ValueError: the settings cannot give local images the global images' shape.
  """
  side, grid = data_config.grid_rows * data_config.tile_size, data_config.local_grid
  if data_config.grid_rows != data_config.grid_cols:
    raise ValueError(f'Local views need a square global grid, got config.data.grid_rows={data_config.grid_rows} '
                     f'and grid_cols={data_config.grid_cols}.')
  if grid < 1 or side % grid:
    raise ValueError(f'config.data.local_grid={grid} must be >= 1 and divide the grid side of {side} px '
                     '(grid_rows * tile_size).')
  if data_config.local_frames_stride < 1:
    raise ValueError(f'config.data.local_frames_stride must be >= 1, got {data_config.local_frames_stride}.')
  return GridSpec(grid, grid, side // grid)
