"""One epoch of LeNet-5 on Fashion-MNIST with PyTorch (Debian python3-torch), one thread: the same
model, initialisation family, recipe (SGD lr 0.05, momentum 0.9, batch 64) and data as
lenet_tapegrad; the shuffled order is PyTorch's own (seeded). Prints the epoch's seconds and the
test accuracy. Usage: /usr/bin/python3 lenet_pytorch.py [DATA_DIR]"""
import gzip
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(1)
data = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(f"{data}/{name}", "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def images(name):
    return torch.from_numpy(idx(name).astype(np.float32) / 255.0).unsqueeze(1)


x_train, y_train = images("train-images-idx3-ubyte.gz"), torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
x_test, y_test = images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
nn = torch.nn
model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                      nn.Linear(84, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
order = torch.randperm(len(y_train))
start = time.perf_counter()
for b in range(0, len(y_train), 64):
    rows = order[b:b + 64]
    loss = nn.functional.cross_entropy(model(x_train[rows]), y_train[rows])
    opt.zero_grad()
    loss.backward()
    opt.step()
seconds = time.perf_counter() - start
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).double().mean().item()
print(f"pytorch epoch_seconds {seconds:.3f} test_accuracy {accuracy:.4f}")
