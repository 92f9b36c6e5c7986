import os.path
from collections import OrderedDict


def double(x):
    return 2 * x


def table():
    return OrderedDict(a=os.path.join("a", "b"))
