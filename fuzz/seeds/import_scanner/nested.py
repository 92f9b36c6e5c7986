def f():
    try:
        import inner
    except ImportError:
        pass
@deco(__import__("x"))
class C(__import__("b").Base):
    pass
m = importlib.import_module("p")
