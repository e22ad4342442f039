"""The PyTorch side of the training-step benchmark: the same network, head, loss and optimiser as SCFA.

Written here rather than taken from ``torchvision.models`` so that the
comparison does not depend on torchvision's build matching torch's (the
project's venv pairs a CPU torch with a CUDA torchvision) and so that every
layer is visibly the one ``scfa_jax.models.resnet`` builds: the torchvision
('v1.5') layout, stride in the bottleneck's 3x3 conv, no conv biases,
BatchNorm eps 1e-5 / momentum 0.1 (Flax's 0.9), then SCFA's projection head
(Linear-ReLU-Linear, L2-normalised), SupCon ``L_out`` (Khosla et al.) and Adam.

Run as its own process by ``bench.train_step`` (``python -m
scfa_jax.bench.torch_reference '<json kwargs of measure>'``, one JSON line
out): torch.optim imports triton, whose LLVM clashes with jaxlib's in one
process, and separate processes also keep the two frameworks' thread pools
and memory apart. Needs torch (the ``bench`` extra).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from scfa_jax.bench import harness
from scfa_jax.models import resnet


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, in_ch: int, filters: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_ch, filters, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(filters)
    self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(filters)
    self.proj = _projection(in_ch, filters, stride)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + (self.proj(x) if self.proj is not None else x))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, in_ch: int, filters: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_ch, filters, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(filters)
    self.conv2 = nn.Conv2d(filters, filters, 3, stride, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(filters)
    self.conv3 = nn.Conv2d(filters, filters * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(filters * 4)
    self.proj = _projection(in_ch, filters * 4, stride)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = F.relu(self.bn1(self.conv1(x)))
    y = F.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return F.relu(y + (self.proj(x) if self.proj is not None else x))


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
  if in_ch == out_ch and stride == 1:
    return None
  return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class SCFATorch(nn.Module):
  """ResNet encoder (global average pool) + the SupCon projection head."""

  def __init__(self, depth: int, width: int = 64, proj_hidden_dim: int = 2048, proj_dim: int = 128):
    super().__init__()
    block_type, stage_sizes = resnet.DEPTHS[depth]
    block = Bottleneck if block_type == 'bottleneck' else BasicBlock
    self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                              nn.MaxPool2d(3, 2, 1))
    layers, in_ch = [], width
    for stage, num_blocks in enumerate(stage_sizes):
      for i in range(num_blocks):
        filters = width * 2**stage
        layers.append(block(in_ch, filters, 2 if stage > 0 and i == 0 else 1))
        in_ch = filters * block.expansion
    self.blocks = nn.Sequential(*layers)
    self.head = nn.Sequential(nn.Linear(in_ch, proj_hidden_dim), nn.ReLU(), nn.Linear(proj_hidden_dim, proj_dim))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    features = self.blocks(self.stem(x)).mean(dim=(2, 3)).float()
    return F.normalize(self.head(features).float(), dim=-1, eps=1e-6)


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07,
                base_temperature: float = 0.07) -> torch.Tensor:
  """SupContrast's ``L_out``, as ``scfa_jax.losses.supcon_loss`` computes it on one device."""
  n = z.shape[0]
  logits = z @ z.T / temperature
  not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
  positives = not_self & (labels[:, None] == labels[None, :])
  logits = logits.masked_fill(~not_self, -1e9)
  logits = logits - logits.max(dim=1, keepdim=True).values.detach()
  log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
  num_pos = positives.sum(1)
  mean_log_prob_pos = (log_prob * positives).sum(1) / num_pos.clamp(min=1)
  is_anchor = num_pos > 0
  return -(temperature / base_temperature) * mean_log_prob_pos[is_anchor].mean()


def make_step(depth: int, batch: int, image_size: int, *, dtype: str, channels_last: bool,
              device: str = 'cpu', width: int = 64, seed: int = 0) -> Callable[[], float]:
  """A closure running one full training step on fixed random data; returns the loss.

  ``dtype='bfloat16'`` runs the model under autocast (float32 parameters, Adam
  and loss), as SCFA's ``model.dtype`` does.
  """
  torch.manual_seed(seed)
  rng = np.random.default_rng(seed)
  model = SCFATorch(depth, width).to(device)
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  model = model.to(memory_format=fmt)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
  views = torch.from_numpy(rng.integers(0, 256, size=(batch, 2, image_size, image_size, 3), dtype=np.uint8))
  labels = torch.from_numpy(rng.integers(0, max(batch // 2, 1), size=(batch,)).astype(np.int64)).to(device)
  mean = torch.tensor([0.485, 0.456, 0.406]) * 255
  std = torch.tensor([0.229, 0.224, 0.225]) * 255
  views = views.to(device)
  mean, std = mean.to(device), std.to(device)
  autocast: Callable[[], Any] = contextlib.nullcontext
  if dtype == 'bfloat16':
    autocast = lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)  # pylint: disable=unnecessary-lambda-assignment

  def step() -> float:
    # [B, 2, H, W, C] uint8 -> [2B, C, H, W] normalised float, view-major like stack_views.
    images = views.transpose(0, 1).reshape((-1,) + views.shape[2:]).float()
    images = ((images - mean) / std).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    with autocast():
      z = model(images)
    loss = supcon_loss(z.float(), labels.repeat(2))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss

  return step


def measure(*, depth: int, width: int, batch: int, image_size: int, dtype: str, channels_last: bool, device: str,
            warmup: int, steps: int) -> dict[str, Any]:
  """Times ``steps`` reference steps after ``warmup`` untimed ones (the first one included)."""
  if device == 'auto':  # a child process: probing CUDA cannot clash with jaxlib here
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
  step = make_step(depth, batch, image_size, dtype=dtype, channels_last=channels_last, device=device, width=width)
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
  times = harness.time_calls(lambda: (float(step()), sync()), warmup=warmup, reps=steps)
  peak = torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else None
  return {'times': times, 'torch_version': torch.__version__, 'torch_device': device,
          'torch_threads': torch.get_num_threads(), 'torch_peak_mem_mb': peak}


if __name__ == '__main__':
  print(json.dumps(measure(**json.loads(sys.argv[1]))), flush=True)
