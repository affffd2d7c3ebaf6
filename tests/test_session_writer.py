"""The session store writer: the writers of one store on one event loop share their rounds (one transaction,
one commit, for every session's pending samples), and each writer still hears about its own rows only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hipback.ingest.errors import LocalStoreError
from hipback.ingest.session.writer import StoreWriter
from hipback.ingest.store import LocalStore

T0 = 1_750_000_000.0


class _CountingStore:
    """A store whose transactions are counted (and can be made to fail at the commit)."""

    def __init__(self, store: LocalStore, fail_commit: bool = False) -> None:
        self._store = store
        self.transactions = 0
        self.fail_commit = fail_commit

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[LocalStore]:
        self.transactions += 1
        with self._store.transaction() as st:
            yield st
            if self.fail_commit:
                raise LocalStoreError(self._store.path, "cannot be written (disk full).")


def _session(store: LocalStore, patient: str) -> str:
    sid = store.open_session(patient)
    store.add_sensor(sid, "pelvis", "quat", "hipback_v1", None)
    store.add_sensor(sid, "thigh_left", "quat", "hipback_v1", None)
    return sid


def _chunk(k0: int, n: int) -> tuple[np.ndarray, dict]:
    seq = np.arange(k0, k0 + n)
    return T0 + 0.01 * seq, {"seq": seq, "quat": np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), "acc": None,
                             "gyr": None, "mag": None, "device_time": 0.01 * seq}


def test_writers_of_one_store_and_loop_share_one_transaction_per_round(tmp_path: Path) -> None:
    async def main() -> None:
        with LocalStore(tmp_path / "s.sqlite") as st:
            counting = _CountingStore(st)
            sids = [_session(st, "P-0001"), _session(st, "P-0002")]
            written: list[list[tuple]] = [[], []]
            loop = asyncio.get_running_loop()
            writers = [StoreWriter(counting, sid, loop, lambda *a, i=i: written[i].append(a[:4]),  # type: ignore[arg-type]
                                   lambda *a: None) for i, sid in enumerate(sids)]
            t, arrays = _chunk(0, 3)
            writers[0].samples("pelvis", t, arrays, [1.0])
            writers[1].samples("thigh_left", t, arrays, [2.0])
            writers[1].samples("pelvis", *_chunk(3, 2), [3.0])
            writers[0].samples("pelvis", *_chunk(3, 2), [4.0])
            await asyncio.sleep(0.05)  # the group's one timer (20 ms) wrote everything
            assert counting.transactions == 1
            assert [w.rounds for w in writers] == [1, 1]
            assert written[0] == [("pelvis", 5, 5, [1.0, 4.0])]
            assert written[1] == [("thigh_left", 3, 3, [2.0]), ("pelvis", 2, 2, [3.0])]
            assert st.sample_count(sids[0], "pelvis") == 5
            assert st.sample_count(sids[1], "thigh_left") == 3
            assert st.sample_count(sids[1], "pelvis") == 2
            # write_now of one writer writes the other's pending samples in the same round
            writers[1].samples("pelvis", *_chunk(5, 1), [5.0])
            writers[0].write_now()
            assert counting.transactions == 2
            assert written[1][-1] == ("pelvis", 1, 1, [5.0]) and len(written[0]) == 1
            assert [w.rounds for w in writers] == [1, 2]
            writers[0].write_now()  # nothing pending: no transaction
            assert counting.transactions == 2
            # another store on the same loop has its own group
            with LocalStore(tmp_path / "other.sqlite") as other:
                counting_other = _CountingStore(other)
                sid = _session(other, "P-0003")
                w3 = StoreWriter(counting_other, sid, loop, lambda *a: None, lambda *a: None)  # type: ignore[arg-type]
                w3.samples("pelvis", *_chunk(0, 2), [6.0])
                writers[0].samples("pelvis", *_chunk(9, 2), [7.0])
                await asyncio.sleep(0.05)
                assert (counting.transactions, counting_other.transactions) == (3, 1)
                assert other.sample_count(sid) == 2

    asyncio.run(main())


def test_a_failed_shared_commit_is_reported_to_every_writer_for_each_placement(tmp_path: Path) -> None:
    async def main() -> None:
        with LocalStore(tmp_path / "s.sqlite") as st:
            counting = _CountingStore(st, fail_commit=True)
            sids = [_session(st, "P-0001"), _session(st, "P-0002")]
            errors: list[list[tuple]] = [[], []]
            written: list[tuple] = []
            loop = asyncio.get_running_loop()
            writers = [StoreWriter(counting, sid, loop, lambda *a: written.append(a),  # type: ignore[arg-type]
                                   lambda what, p, exc, i=i: errors[i].append((what, p, str(exc))))
                       for i, sid in enumerate(sids)]
            writers[0].samples("pelvis", *_chunk(0, 3), [1.0])
            writers[0].samples("thigh_left", *_chunk(0, 3), [1.0])
            writers[0].samples("pelvis", *_chunk(3, 3), [1.0])
            writers[1].samples("pelvis", *_chunk(0, 3), [1.0])
            writers[1].write_now()
            msg = f"the local store {st.path} cannot be written (disk full)."
            assert errors[0] == [("samples", "pelvis", msg), ("samples", "thigh_left", msg)]
            assert errors[1] == [("samples", "pelvis", msg)]
            assert written == []
            assert st.sample_count(sids[0]) == 0 and st.sample_count(sids[1]) == 0

    asyncio.run(main())
