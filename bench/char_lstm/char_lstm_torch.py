#!/usr/bin/python3
"""The char_lstm example's model and training, written for PyTorch (Debian python3-torch), one thread.

Same text, vocabulary, split, sequences, model (Embedding -> LSTM -> Linear), initial-weight
distributions (the head's set to tapegrad's Linear default), AdamW, schedule (linear warm-up, cosine decay to a tenth), gradient clipping and
validation as examples/char_lstm; the shuffling differs (NumPy's generator). Prints one line per
epoch: seconds, characters per second, training and validation loss.
"""
import argparse
import math
import os
import time

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="/usr/share/games/fortunes")
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--max-steps", type=int, default=300)
parser.add_argument("--limit-chars", type=int, default=0)
parser.add_argument("--seq-len", type=int, default=64)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--embed", type=int, default=64)
parser.add_argument("--hidden", type=int, default=256)
parser.add_argument("--layers", type=int, default=2)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--weight-decay", type=float, default=0.01)
parser.add_argument("--clip", type=float, default=1.0)
parser.add_argument("--val-fraction", type=float, default=0.1)
parser.add_argument("--val-batches", type=int, default=20)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(args.seed)

if os.path.isdir(args.data):
    files = sorted(os.path.join(args.data, f) for f in os.listdir(args.data)
                   if os.path.isfile(os.path.join(args.data, f)) and os.path.splitext(f)[1] not in (".dat", ".u8"))
else:
    files = [args.data]
text = b""
for f in files:
    with open(f, "rb") as fh:
        text += fh.read()
    if args.limit_chars and len(text) >= args.limit_chars:
        break
if args.limit_chars:
    text = text[:args.limit_chars]
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([index[c] for c in text], dtype=torch.long)
split = int(len(ids) * (1 - args.val_fraction))
T, B, V = args.seq_len, args.batch_size, len(chars)


def sequences(begin, end):
    count = (end - begin - 1) // T if end - begin > T else 0
    return [begin + i * T for i in range(count)]


train, val = sequences(0, split), sequences(split, len(ids))
steps = len(train) // B if args.max_steps == 0 else min(args.max_steps, len(train) // B)
total = steps * args.epochs
warmup = min(100, total // 10)


def batch(starts):
    rows = torch.stack([ids[s:s + T + 1] for s in starts], 1)   # (T + 1, batch)
    return rows[:-1], rows[1:].reshape(-1)


class CharModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, args.embed)
        self.lstm = torch.nn.LSTM(args.embed, args.hidden, args.layers)
        self.head = torch.nn.Linear(args.hidden, V)
        # tapegrad's Linear default: Kaiming-uniform weights, U(-sqrt(6 / in), sqrt(6 / in))
        # (PyTorch's own draws U(-1 / sqrt(in), 1 / sqrt(in))); the biases are drawn alike.
        with torch.no_grad():
            bound = math.sqrt(6.0 / args.hidden)
            self.head.weight.uniform_(-bound, bound)

    def forward(self, tokens):
        return self.head(self.lstm(self.embed(tokens))[0])


model = CharModel()
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)


def rate(step):   # tapegrad's CosineLR(total, lr / 10, warmup), as a factor of lr
    if step < warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


schedule = torch.optim.lr_scheduler.LambdaLR(opt, rate)
rng = np.random.default_rng(args.seed)
F = torch.nn.functional
for epoch in range(1, args.epochs + 1):
    order = rng.permutation(len(train))
    start = time.perf_counter()
    losses = []
    for step in range(steps):
        tokens, targets = batch([train[i] for i in order[step * B:(step + 1) * B]])
        loss = F.cross_entropy(model(tokens).reshape(-1, V), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    with torch.no_grad():
        nb = len(val) // B + (len(val) % B > 0)
        nb = nb if args.val_batches == 0 else min(nb, args.val_batches)
        total_loss, count = 0.0, 0
        for b in range(nb):
            tokens, targets = batch(val[b * B:(b + 1) * B])
            total_loss += F.cross_entropy(model(tokens).reshape(-1, V), targets, reduction="sum").item()
            count += targets.numel()
    print(f"epoch {epoch}: {seconds:.2f} s, {steps * B * T / seconds:.0f} char/s, train loss {np.mean(losses):.4f}, "
          f"validation loss {total_loss / count:.4f}", flush=True)
