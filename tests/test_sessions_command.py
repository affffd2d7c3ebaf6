"""``hipback sessions``: the sessions of a local store, newest first, with what ``report``/``export`` take."""

from __future__ import annotations

from pathlib import Path

from hipback.ingest import cli
from hipback.ingest.influx.lineprotocol import Point
from hipback.ingest.store import LocalStore


def _store(path: Path) -> tuple[str, str, str]:
    with LocalStore(path) as st:
        done = st.open_session("P-0001", {"start_utc": 1_700_000_000.0})
        st.add_sensor(done, "pelvis", "quat", "simulated", None)
        st.add_samples(done, "pelvis", [1_700_000_000.0 + 0.01 * i for i in range(300)],
                       quat=[[1.0, 0.0, 0.0, 0.0]] * 300)
        st.put_results(done, "summary", [{"duration_s": 3.0}])
        st.close_session(done, end_utc=1_700_000_000.0 + 3723.0)
        other = st.open_session("P-0002", {"start_utc": 1_700_100_000.0})
        st.close_session(other, end_utc=1_700_100_010.0)
        running = st.open_session("P-0001", {"start_utc": 1_700_200_000.0})
        st.outbox_add(running, [Point("angles", {"patient": "P-0001", "session": running},
                                      {"pelvic_tilt_deg": 1.0}, 1_700_200_000 * 10**9)])
    return done, other, running


def test_sessions_lists_every_session_newest_first(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "s.sqlite"
    done, other, running = _store(path)
    assert cli.run(["sessions", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if any(i in ln for i in (done, other, running))]
    assert [next(i for i in (done, other, running) if i in ln) for ln in lines] == [running, other, done]
    assert "1:02:03" in lines[2] and "300" in lines[2] and "finished" in lines[2]
    assert "no results" in lines[1] and " open " in lines[0]
    assert lines[0].endswith(" 1")  # the running session's line owed to InfluxDB
    assert cli.run(["sessions", "--store", str(path), "--patient", "P-0001"]) == 0
    out = capsys.readouterr().out
    assert done in out and running in out and other not in out
    assert cli.run(["sessions", "--store", str(path), "--patient", "P-0009"]) == 0
    assert "holds no session of P-0009 yet" in capsys.readouterr().out


def test_sessions_refuses_what_is_not_a_store_in_one_sentence(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.csv").write_text("t,a\n")
    for args, code, words in [
        (["--store", str(tmp_path / "missing.sqlite")], 2, "does not exist"),
        (["--store", str(tmp_path / "notes.csv")], 3, "is not a database"),
        (["--store", str(tmp_path / "missing.sqlite"), "--patient", "Jane Doe"], 2,
         "--patient takes a pseudonym"),
    ]:
        assert cli.run(["sessions", *args]) == code
        err = capsys.readouterr().err.strip()
        assert err.startswith("hipback: ") and words in err and "\n" not in err, err
