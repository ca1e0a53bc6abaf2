#!/usr/bin/python3
"""NumPy reads the files tapegrad writes: run by ctest as numpy_reads.py NPY_WRITER WORKDIR."""
import os
import subprocess
import sys

import numpy as np

writer, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
subprocess.run([writer, work], check=True)

with np.load(os.path.join(work, "model.npz")) as archive:
    assert sorted(archive.files) == ["0.bias", "0.weight"], archive.files
    w, b = archive["0.weight"], archive["0.bias"]
    assert w.dtype == np.float64 and w.shape == (3, 2), (w.dtype, w.shape)
    assert np.array_equal(w, np.arange(6.0).reshape(3, 2) / 10), w
    assert np.array_equal(b, np.array([0.5, -0.5])), b

f4 = np.load(os.path.join(work, "f4.npy"))
assert f4.dtype == np.float32 and f4.flags["C_CONTIGUOUS"], f4.dtype
assert np.array_equal(f4, np.arange(12, dtype=np.float32).reshape(3, 4)), f4

scalar = np.load(os.path.join(work, "scalar.npy"))
assert scalar.shape == () and scalar == 2.5, scalar
print("numpy reads tapegrad's files: ok")
