"""Wavegram-Logmel-CNN14 (Kong et al. 2020, study 003, Sec. II-E, Fig. 1): a learned time-frequency
representation from the waveform (the Wavegram) concatenated with the log-mel after CNN14's first block.

Wavegram: 1-D conv (1 -> 64, kernel 11, stride 5) -> BN -> ReLU, three blocks (3-conv + dilated 3-conv, BN,
ReLU, max-pool 4) down to 100 frames/s at 32 kHz, reshaped to 4 channels x 32 "frequency" bins and a double 3 x 3
block (4 -> 64, pool 2 x 1). Mixup acts on both branches, SpecAugment on the log-mel only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esclib.models.panns.blocks import ConvBlock, init_pann_weights
from esclib.models.panns.cnn import CNN14_LAYOUT, CnnLayout, CnnPann
from esclib.models.panns.frontend import FrontendConfig

#: the Wavegram's "frequency" bins after reshaping its 128 channels
WAVEGRAM_BINS = 32


class WavegramBlock(nn.Module):
    """The authors' ``ConvPreWavBlock``: conv k3 -> BN -> ReLU -> conv k3 dilation 2 -> BN -> ReLU -> max-pool 4."""

    def __init__(self, c_in: int, c_out: int, pool: int = 4) -> None:
        super().__init__()
        self.pool = pool
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=2, dilation=2, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm1d(c_out), nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool1d(x, kernel_size=self.pool)


class Wavegram_Logmel_Cnn14(CnnPann):  # noqa: N801 -- the authors' class name
    """Wavegram-Logmel-CNN14 PANN (the study's best AudioSet system, mAP 0.439); embedding 2048.

    :meth:`forward_logmel` needs the waveform too (``waveform=``), since the Wavegram branch reads it; only the
    32 kHz frontend fits the Wavegram's fixed x320 downsampling (hop 320).
    """

    layout = CnnLayout(CNN14_LAYOUT.channels, 3, 2, 2048, pools=CNN14_LAYOUT.pools,
                       block_inputs=(1, 128, 128, 256, 512, 1024))

    def __init__(self, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
                 spec_augment: bool = True) -> None:
        super().__init__(classes_num=classes_num, frontend=frontend, spec_augment=spec_augment)
        if self.frontend.hop_size != 320:
            raise ValueError(f"Wavegram_Logmel_Cnn14 needs hop 320 (its Wavegram downsamples x320), "
                             f"got the frontend {self.frontend}")
        self.pre_conv0 = nn.Conv1d(1, 64, kernel_size=11, stride=5, padding=5, bias=False)
        self.pre_bn0 = nn.BatchNorm1d(64)
        self.pre_block1 = WavegramBlock(64, 64)
        self.pre_block2 = WavegramBlock(64, 128)
        self.pre_block3 = WavegramBlock(128, 128)
        self.pre_block4 = ConvBlock(128 // WAVEGRAM_BINS, 64, pool=(2, 1))
        self.apply(init_pann_weights)

    def wavegram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The Wavegram branch: ``(B, samples) -> (B, 64, frames / 2, 32)``."""
        a = F.relu(self.pre_bn0(self.pre_conv0(waveform[:, None, :])))
        a = self.pre_block3(self.pre_block2(self.pre_block1(a)))
        a = a.reshape(a.shape[0], -1, WAVEGRAM_BINS, a.shape[-1]).transpose(2, 3)
        return self.pre_block4(a)

    def forward_logmel(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None, *,
                       waveform: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Everything after :meth:`logmel`; ``waveform`` (the same batch, before mixup) feeds the Wavegram."""
        if waveform is None:
            raise ValueError("Wavegram_Logmel_Cnn14.forward_logmel needs waveform=... (the Wavegram branch reads "
                             "the waveform, not the log-mel)")
        wavegram = self.mix(self.wavegram(waveform), mixup_lambda)
        x = self.conv_block1(self.augment(x, mixup_lambda))
        x = F.dropout(torch.cat((x, wavegram), dim=1), p=0.2, training=self.training)
        return self.head(self.run_blocks(x, first=2))

    def forward(self, waveform: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.forward_logmel(self.logmel(waveform), mixup_lambda, waveform=waveform)
