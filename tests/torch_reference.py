#!/usr/bin/python3
"""Prints the PyTorch reference values of tests/test_recurrent.cpp as C++ (float64, one thread).

Run by hand where python3-torch is installed (/usr/bin/python3 tests/torch_reference.py); the test
holds its output. Parameters, inputs and states follow formulas the test repeats: the k-th element
(row-major, parameters in order, concatenated; buffers as constructed) of parameters is 0.5 sin(0.7 k + 1), of
inputs cos(0.37 k), of initial states 0.3 sin(0.5 k + 2).
"""
import math
import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def filled(shape, f, start=0):
    n = math.prod(shape)
    return torch.tensor([f(start + k) for k in range(n)]).reshape(shape)


def param(k):
    return 0.5 * math.sin(0.7 * k + 1)


def inp(k):
    return math.cos(0.37 * k)


def state(k):
    return 0.3 * math.sin(0.5 * k + 2)


def set_params(module):
    k = 0
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(filled(tuple(p.shape), param, k))
            k += p.numel()


def cpp(name, t):
    values = ", ".join(repr(float(v)) for v in t.detach().reshape(-1))
    shape = ", ".join(str(d) for d in t.shape)
    print(f"const Reference {name}{{{{{shape}}}, {{{values}}}}};")


x_cell = filled((2, 3), inp)
x_seq = filled((3, 2, 3), inp)

cell = torch.nn.LSTMCell(3, 4)
set_params(cell)
h, c = cell(x_cell, (filled((2, 4), state), filled((2, 4), state, 8)))
cpp("lstm_cell_h", h)
cpp("lstm_cell_c", c)

gru_cell = torch.nn.GRUCell(3, 4)
set_params(gru_cell)
cpp("gru_cell_h", gru_cell(x_cell, filled((2, 4), state)))

lstm = torch.nn.LSTM(3, 4, num_layers=2)
set_params(lstm)
out, (h, c) = lstm(x_seq, (filled((2, 2, 4), state), filled((2, 2, 4), state, 16)))
cpp("lstm_output", out)
cpp("lstm_h", h)
cpp("lstm_c", c)
out, (h, c) = lstm(x_seq)
cpp("lstm_zero_state_output", out)

gru = torch.nn.GRU(3, 4, num_layers=2)
set_params(gru)
out, h = gru(x_seq, filled((2, 2, 4), state))
cpp("gru_output", out)
cpp("gru_h", h)

norm = torch.nn.LayerNorm([3, 4])
set_params(norm)
cpp("layer_norm", norm(filled((2, 3, 4), inp)))

batch_norm = torch.nn.BatchNorm2d(2)
set_params(batch_norm)
x_img = filled((3, 2, 2, 2), inp)
cpp("batch_norm_train", batch_norm(x_img))
cpp("batch_norm_running_mean", batch_norm.running_mean)
cpp("batch_norm_running_var", batch_norm.running_var)
batch_norm.eval()
cpp("batch_norm_eval", batch_norm(x_img))

# Losses (tests/test_softmax_loss.cpp): logits (4, 3) from inp, labels with one ignored (-100).
print("// losses")
logits = filled((4, 3), inp) * 3
labels = torch.tensor([2, 0, -100, 1])
weight = torch.tensor([0.5, 2.0, 1.5])
F = torch.nn.functional
cpp("ce_plain", F.cross_entropy(logits, labels))
cpp("ce_weighted_smoothed", F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2))
cpp("ce_weighted_smoothed_sum", F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2, reduction="sum"))
cpp("ce_smoothed_none", F.cross_entropy(logits, labels, label_smoothing=0.1, reduction="none"))
cpp("nll_weighted", F.nll_loss(F.log_softmax(logits, 1), labels, weight=weight))
targets = filled((4, 3), state) + 0.5
cpp("bce_logits", F.binary_cross_entropy_with_logits(logits, targets))
cpp("bce_logits_pos_weight_sum", F.binary_cross_entropy_with_logits(logits, targets, reduction="sum",
                                                                      pos_weight=torch.tensor(3.0)))
cpp("huber", F.huber_loss(logits, targets, delta=0.7))
cpp("huber_none", F.huber_loss(logits, targets, delta=1.0, reduction="none"))
