from . import helpers
from .helpers import double
import package_a.subpackage

value = double(21)
