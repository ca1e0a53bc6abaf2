#!/usr/bin/python3
"""Writes the NumPy-made files that tests/test_serialize.cpp reads (run with Debian's python3-numpy).

The files are committed; this script documents how they were made:
  f8_c.npy               float64, C order, little-endian: arange(6).reshape(2, 3) * 0.5
  f4_fortran_big.npy     float32, Fortran order, big-endian: arange(12).reshape(3, 4)
  linear.npz             np.savez: weight (3, 2) = arange(6).reshape(3, 2) / 10, bias (2,) = [0.5, -0.5]
  linear_compressed.npz  the same with np.savez_compressed
"""
import numpy as np

np.save("f8_c.npy", np.arange(6.0).reshape(2, 3) * 0.5)
np.save("f4_fortran_big.npy", np.asfortranarray(np.arange(12, dtype=">f4").reshape(3, 4)))
weight = np.arange(6.0).reshape(3, 2) / 10
bias = np.array([0.5, -0.5])
np.savez("linear.npz", weight=weight, bias=bias)
np.savez_compressed("linear_compressed.npz", weight=weight, bias=bias)
