"""The streaming contract every processing block follows.

A *block* is one algorithm (orientation of one sensor, grid merge, calibration search, slip monitor, angles,
plausibility guard, stride/hold detection, activity classification, summary). Each is a class:

* **Parameters in the constructor, keyword arguments only**, each stored under its own name (so
  :meth:`Block.get_params` can read it back), documented with units. Nothing is derived from the data in the
  constructor. ``type(b)(**b.get_params())`` builds an identical, fresh block (:meth:`Block.clone`).
* **Streaming input**: :meth:`update` takes the next chunk of the block's input (consecutive pieces of one
  stream; any size, including one sample or the whole recording) and returns what *became final* with that
  chunk (events, rows, ...; an empty list or empty series when nothing did). :meth:`finish` says no more
  input follows and returns what the flush made final. After :meth:`finish`, :meth:`update` raises.
* **Results as attributes** with a trailing underscore (``strides_``, ``holds_``, ``bouts_``,
  ``calibration_``, ...): everything final so far, so a batch caller feeds once, calls :meth:`finish` and
  reads the attributes (mobgap's ``ic_list_`` style).
* **Chunking never changes a result**: the concatenation of everything returned by :meth:`update` and
  :meth:`finish`, and every ``*_`` attribute after :meth:`finish`, are identical (bit for bit) whatever the
  chunk boundaries. Decisions are taken at data-defined samples (absolute indices), never "at the end of the
  current chunk". Batch is the same code fed once; there is no second implementation (VQF's
  ``updateBatch`` is a loop over ``update``).
* **Pure**: arrays in, arrays out; no I/O, no clock, no asyncio; a block imports nothing of hipback outside
  :mod:`hipback.processing`.
* **Cheap per call**: a call with a few samples must not cost much more per sample than a large chunk (live
  BLE delivers 1-10 samples per notification). Blocks that need vector work on windows buffer their input
  and work once enough has arrived; the buffering must not change results.

``tests/test_block_contract.py`` checks every block of the package against this contract (hypothesis
chooses the chunk boundaries). A new block (for example in ``hipback.processing.exercises``) subclasses
:class:`Block`, implements ``update``/``finish``, and adds an entry (a factory and an example input) to that
test.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


#: live chunks of at most this many samples or rows (the few of a BLE notification, a full-MTU one included)
#: are checked and converted on Python floats by the blocks that have such a path (sensor channel,
#: plausibility guard): the same elementwise operations in the same order, so the same values, without numpy's
#: per-call overhead, which dominates on so few rows
SMALL_CHUNK = 12


class Block(Generic[In, Out]):
    """Base class of a streaming block (see the module docstring for the contract)."""

    def update(self, chunk: In) -> Out:  # pragma: no cover - abstract
        """Take the next chunk of input; return what became final with it."""
        raise NotImplementedError

    def finish(self) -> Out:  # pragma: no cover - abstract
        """No more input: flush and return what became final; results stay readable as ``*_`` attributes."""
        raise NotImplementedError

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            n
            for n, p in sig.parameters.items()
            if n != "self" and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (deep copies): ``type(self)(**params)`` rebuilds this block."""
        return {n: copy.deepcopy(getattr(self, n)) for n in self._param_names()}

    def clone(self: Any) -> Any:
        """A fresh block (no data seen) with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def params_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Parameter dictionaries equal, comparing nested blocks by their own parameters."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, Block) and isinstance(y, Block):
            if type(x) is not type(y) or not params_equal(x.get_params(), y.get_params()):
                return False
        elif x != y:
            return False
    return True
