"""The block base class: parameters read back, clones, repr and parameter comparison (nested blocks by their
own parameters).

Written for the survivors of ``python bench/mutation.py --group blocks``.
"""

from __future__ import annotations

from hipback.processing.blocks import Block, params_equal


class _Leaf(Block[int, int]):
    def __init__(self, *, gain: float = 2.0, names: list[str] | None = None) -> None:
        self.gain = gain
        self.names = names if names is not None else ["a"]
        self.seen = 0

    def update(self, chunk: int) -> int:
        self.seen += chunk
        return chunk


class _Tree(Block[int, int]):
    def __init__(self, leaf: _Leaf, *args: object, scale: int = 1, **kwargs: object) -> None:
        self.leaf = leaf
        self.scale = scale


def test_params_clone_and_repr() -> None:
    leaf = _Leaf(gain=3.5, names=[["x"], ["y"]])
    leaf.update(4)
    params = leaf.get_params()
    assert params == {"gain": 3.5, "names": [["x"], ["y"]]}
    assert params["names"][0] is not leaf.names[0]  # deep copies
    twin = leaf.clone()
    assert type(twin) is _Leaf and twin.get_params() == params and twin.seen == 0 and twin is not leaf
    assert repr(leaf) == "_Leaf(gain=3.5, names=[['x'], ['y']])"
    assert _Tree._param_names() == ["leaf", "scale"]  # *args and **kwargs are not parameters


def test_params_equal_compares_nested_blocks_by_their_parameters() -> None:
    a = {"leaf": _Leaf(gain=1.0), "scale": 2}
    assert params_equal(a, {"leaf": _Leaf(gain=1.0), "scale": 2})
    assert not params_equal(a, {"leaf": _Leaf(gain=1.5), "scale": 2})
    assert not params_equal(a, {"leaf": _Leaf(gain=1.0), "scale": 3})
    assert not params_equal(a, {"leaf": _Leaf(gain=1.0)})
    assert not params_equal(a, {"leaf": _Tree(_Leaf(gain=1.0)), "scale": 2})  # another kind of block
    assert params_equal({"t": _Tree(_Leaf(gain=1.0), scale=4)}, {"t": _Tree(_Leaf(gain=1.0), scale=4)})
    assert not params_equal({"t": _Tree(_Leaf(gain=1.0), scale=4)}, {"t": _Tree(_Leaf(gain=2.0), scale=4)})
