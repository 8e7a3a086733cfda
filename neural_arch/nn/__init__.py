"""Layers and models: Module, containers, layers, initialisation."""
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Parameter"]
from . import init
from .linear import Bilinear, Flatten, Identity, Linear
from .activation import (ELU, GELU, SELU, Hardtanh, LeakyReLU, LogSoftmax, Mish, ReLU, SiLU,
                         Sigmoid, Softmax, Softplus, Tanh)
from .dropout import Dropout
from .embedding import Embedding
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm

__all__ += ["init", "Linear", "Bilinear", "Identity", "Flatten", "ReLU", "LeakyReLU", "ELU",
            "SELU", "GELU", "SiLU", "Mish", "Hardtanh", "Sigmoid", "Tanh", "Softplus",
            "Softmax", "LogSoftmax", "Dropout", "Embedding", "BatchNorm1d", "BatchNorm2d",
            "LayerNorm", "GroupNorm"]
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .attention import MultiheadAttention, TransformerEncoderLayer

__all__ += ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention",
            "TransformerEncoderLayer"]
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
                      MaxPool2d)

__all__ += ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d",
            "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d"]
