"""Oracle: CPython's own pickle, both directions.

usage:
  pickle_oracle.py generate SEED COUNT
      Generates COUNT random values (deterministic for SEED) and prints, for
      each, its value image and its pickle in protocols 0 to 5 (hex).
  pickle_oracle.py load
      stdin: JSON list of hex pickles; prints for each the value image of
      pickle.loads(...) or {"error": "..."}.
"""
import collections
import json
import pickle
import random
import sys

import torch

from value_image import image

ALPHABET = "ab\u00e9\u4e2d\U0001f600 '\"\\\n\t\x00"


def text(r):
    return "".join(r.choice(ALPHABET) for _ in range(r.randrange(0, 8)))


def scalar(r):
    kind = r.randrange(10)
    if kind == 0:
        return r.choice([None, True, False])
    if kind == 1:
        return r.choice([0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31), 2**31, 2**63, -(2**64) - 1, 2**100, 2**1000])
    if kind == 2:
        return r.randrange(-(2**40), 2**40)
    if kind == 3:
        return r.choice([0.0, -0.0, 1.5, 0.1, 1e300, -2.25e-300, float("inf"), float("-inf"), 1e16, 1e-5, 123.456])
    if kind == 4:
        return text(r)
    if kind == 5:
        return bytes(r.randrange(256) for _ in range(r.randrange(0, 6)))
    if kind == 6:
        return bytearray(r.randrange(256) for _ in range(r.randrange(0, 4)))
    if kind == 7:
        return complex(r.choice([0.0, 1.5, -2.0]), r.choice([0.0, 3.25, -1.0]))
    if kind == 8:
        return r.choice([torch.float16, torch.int64, torch.bool, torch.bfloat16, torch.Size([2, 3]), torch.Size([])])
    return r.choice([torch.device("cpu"), torch.device("cuda", 1)])


def hashable(r):
    kind = r.randrange(4)
    if kind == 0:
        return text(r)
    if kind == 1:
        return r.randrange(-5, 300)
    if kind == 2:
        return (r.randrange(3), text(r))
    return r.choice([None, True, 2.5, b"k"])


def value(r, depth=0):
    if depth > 3 or r.random() < 0.35:
        return scalar(r)
    kind = r.randrange(7)
    n = r.randrange(0, 5)
    if kind == 0:
        return [value(r, depth + 1) for _ in range(n)]
    if kind == 1:
        return tuple(value(r, depth + 1) for _ in range(n))
    if kind == 2:
        return {hashable(r): value(r, depth + 1) for _ in range(n)}
    if kind == 3:
        return collections.OrderedDict((text(r), value(r, depth + 1)) for _ in range(n))
    if kind == 4:
        return set(hashable(r) for _ in range(n))
    if kind == 5:
        return frozenset(r.randrange(100) for _ in range(n))
    shared = [value(r, depth + 1)]
    return [shared, shared, {"again": shared}]


def main():
    if sys.argv[1] == "generate":
        r = random.Random(int(sys.argv[2]))
        out = []
        for _ in range(int(sys.argv[3])):
            v = value(r)
            out.append({
                "image": image(v),
                "pickles": {str(p): pickle.dumps(v, protocol=p).hex() for p in range(6)},
            })
        json.dump(out, sys.stdout)
    elif sys.argv[1] == "load":
        out = []
        for data in json.load(sys.stdin):
            try:
                out.append(image(pickle.loads(bytes.fromhex(data))))
            except Exception as error:  # the answer is data either way
                out.append({"error": f"{type(error).__name__}: {error}"})
        json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
