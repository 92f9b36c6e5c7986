"""The speed corpus of the bench's `scanners` section, made with the oracle venv.

usage: scanners_corpus.py OUT N

Writes N clean files PyTorch saves into OUT (state dicts of varying size,
small training checkpoints with optimizer and scheduler state, legacy
torch.save files, convolutional nets with BatchNorm buffers, dicts of
tensors of several dtypes), named NNNN_<kind>.pt, seeded so every run writes
the same tensors. OUT/stamp.json records N and this script's SHA-256; when
they match, nothing is written (the corpus is cached).
"""
import hashlib
import json
import math
import os
import random
import sys

KINDS = ["state_dict", "checkpoint", "legacy", "convnet", "tensors"]


def stamp_text(count):
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return json.dumps({"files": count, "script_sha256": digest}, sort_keys=True)


def main(out, count):
    stamp = os.path.join(out, "stamp.json")
    expected = stamp_text(count)
    try:
        with open(stamp) as f:
            if f.read() == expected:
                print(f"scanners_corpus: {out} is up to date ({count} files)", file=sys.stderr)
                return
    except OSError:
        pass
    # Imported only when writing: torch takes seconds to import.
    import torch
    from torch import nn

    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".pt") or name == "stamp.json":
            os.remove(os.path.join(out, name))
    torch.manual_seed(0)
    r = random.Random(0)

    def width():
        # Log-uniform from 4 to 512: files from about 1 KB to a few MB.
        return int(math.exp(r.uniform(math.log(4), math.log(512))))

    def mlp():
        sizes = [width() for _ in range(2 + r.randrange(4))]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        if r.random() < 0.3:
            layers.append(nn.LayerNorm(sizes[-1]))
        if isinstance(layers[-1], nn.ReLU):
            layers.pop()
        return nn.Sequential(*layers)

    def convnet():
        channels = [3] + [min(width(), 128) for _ in range(1 + r.randrange(3))]
        layers = []
        for a, b in zip(channels, channels[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], 10)]
        return nn.Sequential(*layers)

    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        path = os.path.join(out, f"{index:04}_{kind}.pt")
        if kind == "state_dict":
            model = mlp()
            if r.random() < 0.3:
                model = model.half()
            torch.save(model.state_dict(), path)
        elif kind == "checkpoint":
            model = mlp()
            first = next(model.parameters())
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
            loss = sum(p.sum() for p in model.parameters())
            loss.backward()
            optimizer.step()
            scheduler.step()
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": index,
                    "step": index * 100,
                    "best_metric": r.random(),
                    "args": {"lr": 1e-3, "name": f"run-{index}", "tags": ["bench", kind],
                             "in_features": first.shape[-1]},
                },
                path,
            )
        elif kind == "legacy":
            torch.save(mlp().state_dict(), path, _use_new_zipfile_serialization=False)
        elif kind == "convnet":
            model = convnet()
            model.train()
            model(torch.randn(2, 3, 8, 8))  # BatchNorm running stats move
            torch.save(model.state_dict(), path)
        else:
            n = width()
            torch.save(
                {
                    "embedding": torch.randn(n, 16).to(torch.bfloat16),
                    "ids": torch.randint(0, 1000, (n,)),
                    "mask": torch.rand(n) > 0.5,
                    "quantized": torch.randint(-128, 127, (n, 4), dtype=torch.int8),
                    "views": [torch.arange(n, dtype=torch.float32)[i::3] for i in range(3)],
                    "meta": {"n": n, "names": [f"t{i}" for i in range(3)], "scale": 0.5},
                },
                path,
            )
    with open(stamp, "w") as f:
        f.write(expected)
    print(f"scanners_corpus: wrote {count} files into {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
