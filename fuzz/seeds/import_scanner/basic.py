import a.b, c as d
from . import x
from ..y import *
__import__("k", g, l, ["j"], 1)
