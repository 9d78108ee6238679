"""Training engine: the skorch NeuralNet subclass, LR schedule and callbacks."""

from .augment import SpikeAugmenter
from .averaging import WeightAverage
from .callbacks import EpochProgressBar, FinishedEpochWeights
from .count_decoder import blend_count_decoder
from .graphs import GraphedTrainStep
from .net import (LossCombiner, NeuroformerNet, TokenBatches, compile_blocks, decay_param_groups,
                  device_context, warmup_cosine)

__all__ = ["EpochProgressBar", "FinishedEpochWeights", "GraphedTrainStep", "LossCombiner",
           "NeuroformerNet", "SpikeAugmenter", "TokenBatches", "WeightAverage",
           "blend_count_decoder", "compile_blocks", "decay_param_groups", "device_context",
           "warmup_cosine"]
