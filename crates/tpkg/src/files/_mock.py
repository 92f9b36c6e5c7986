"""Stand-ins for the attributes of modules mocked out when this package was
written (by tpkg; PyTorch's importer loads it as the `_mock` module).

Every attribute of a mocked module is a MockedObject named after it. Using
one in any way (calling it, operators, iteration, indexing, truth) raises
NotImplementedError naming the object and the use; repr() and str() work.
"""

_USES = (
    "__abs__", "__add__", "__aenter__", "__aexit__", "__aiter__", "__and__",
    "__anext__", "__await__", "__bool__", "__bytes__", "__call__", "__ceil__",
    "__complex__", "__contains__", "__delattr__", "__delitem__", "__divmod__",
    "__enter__", "__eq__", "__exit__", "__float__", "__floor__",
    "__floordiv__", "__ge__", "__getattr__", "__getitem__", "__gt__",
    "__hash__", "__iadd__", "__iand__", "__ifloordiv__", "__ilshift__",
    "__imatmul__", "__imod__", "__imul__", "__index__", "__int__",
    "__invert__", "__ior__", "__ipow__", "__irshift__", "__isub__",
    "__iter__", "__itruediv__", "__ixor__", "__le__", "__len__",
    "__length_hint__", "__lshift__", "__lt__", "__matmul__", "__missing__",
    "__mod__", "__mul__", "__ne__", "__neg__", "__next__", "__or__",
    "__pos__", "__pow__", "__radd__", "__rand__", "__rdivmod__",
    "__reversed__", "__rfloordiv__", "__rlshift__", "__rmatmul__",
    "__rmod__", "__rmul__", "__ror__", "__round__", "__rpow__",
    "__rrshift__", "__rshift__", "__rsub__", "__rtruediv__", "__rxor__",
    "__setattr__", "__setitem__", "__sub__", "__truediv__", "__trunc__",
    "__xor__",
)


class MockedObject:
    _name = "<mocked>"

    def __new__(cls, *args, **kwargs):
        # Only a mocked module's __getattr__ makes these; anything else (an
        # unpickler rebuilding a mocked class, say) is an error.
        if not kwargs.get("_suppress_err"):
            raise NotImplementedError(
                f"Object '{cls._name}' was mocked out during packaging but it "
                "is being used in '__new__'. If this error is happening during "
                "'load_pickle', please ensure that your pickled object doesn't "
                "contain any mocked objects."
            )
        return super().__new__(cls)

    def __init__(self, name, _suppress_err):
        self.__dict__["_name"] = name

    def __repr__(self):
        return f"MockedObject({self._name})"

    __str__ = __repr__


def _refuse(use):
    def refuse(self, *args, **kwargs):
        raise NotImplementedError(
            f"Object '{self._name}' was mocked out during packaging but it is "
            f"being used in {use}"
        )

    return refuse


for _use in _USES:
    setattr(MockedObject, _use, _refuse(_use))
del _use
