"""Data: datasets, the DataLoader, and built-in datasets that need no network.

>>> from neural_arch.data import DataLoader, load_digits
>>> X, y = load_digits()
>>> loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True, seed=0)
>>> x, t = next(iter(loader))
>>> tuple(x.shape), tuple(t.shape)
((64, 64), (64,))
"""
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .dataloader import Batch, DataLoader, default_collate
from .datasets import (load_digits, make_circles, make_moons, make_regression, make_spirals,
                       make_xor)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "DataLoader", "Batch", "default_collate", "load_digits", "make_spirals",
           "make_moons", "make_circles", "make_xor", "make_regression"]
