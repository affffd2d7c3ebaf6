"""Exercise programmes in the session config, with flexion/extension-responder safety.

The ``[programme]`` table of a session config (see ``docs/exercises.md``)::

    [programme]
    responder = "flexion"            # the clinician's marking: flexion, extension or neither
    exercise_folder = "exercises"    # optional: the clinic's own exercise files (relative to the config)

    [[programme.exercises]]
    name = "hip_flexor_kneeling"
    sides = ["left", "right"]        # one-sided exercises: which sides, in this order (default both)
    sets = 1
    holds = 3
    hold_s = 30

    [[programme.exercises]]
    name = "prone_press_up"
    reps = 10
    override = true                  # the clinician accepts an exercise marked "avoid" for this profile ...
    override_by = "clinician-07"     # ... who (an identifier, not a name) ...
    override_reason = "tolerated well in clinic"   # ... and why; recorded with the session

An exercise the catalogue marks ``avoid`` for the patient's profile refuses the programme with a plain reason
unless that entry carries the override (all three keys); the override is kept in :attr:`Programme.overrides`
and in :meth:`Programme.to_dict` (stored with the session). ``caution`` exercises load with a warning.
Every mistake is a :class:`~hipback.ingest.errors.ConfigError` with one sentence naming the file and the key.

Reading files lives here (ingest) rather than in :mod:`hipback.processing.exercises`, which only reads the
catalogue shipped as package data: a clinic's folder is a boundary (paths, permissions, encodings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hipback.ingest.errors import ConfigError
from hipback.processing.exercises.catalogue import (
    Catalogue,
    CatalogueError,
    build_catalogue,
    load_catalogue,
    shipped_files,
)
from hipback.processing.exercises.engine import RepResult
from hipback.processing.exercises.stream import ProgrammeEvent, ProgrammeItem

if TYPE_CHECKING:
    from hipback.processing.pipeline import ExerciseEvent

RESPONDERS = ("flexion", "extension", "neither")
_ENTRY_KEYS = {
    "name",
    "sides",
    "sets",
    "reps",
    "holds",
    "hold_s",
    "override",
    "override_by",
    "override_reason",
}
_TOP_KEYS = {"responder", "exercise_folder", "exercises"}
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass
class Override:
    """A clinician accepted an exercise marked ``avoid`` for the patient's responder profile."""

    exercise: str
    responder: str
    by: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"exercise": self.exercise, "responder": self.responder, "by": self.by, "reason": self.reason}


@dataclass
class Programme:
    """A validated programme: ``items`` in the order they are done (one per set and side)."""

    responder: str
    items: list[ProgrammeItem]
    overrides: list[Override] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    catalogue: Catalogue | None = None

    def to_dict(self) -> dict[str, Any]:
        """What is stored with the session (the overrides are the clinician's record)."""
        return {
            "responder": self.responder,
            "items": [
                {"exercise": i.exercise, "side": i.side, "reps": i.reps, "holds": i.holds, "hold_s": i.hold_s}
                for i in self.items
            ],
            "overrides": [o.to_dict() for o in self.overrides],
            "warnings": list(self.warnings),
        }


def load_clinic_catalogue(folder: str | Path) -> Catalogue:
    """The shipped catalogue plus every ``*.toml`` exercise file of ``folder`` (validated the same way)."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root}: the exercise folder does not exist.")
    files, postures = shipped_files()
    for path in sorted(root.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: the exercise file cannot be read ({exc}).") from None
        files[str(path)] = text
    try:
        return build_catalogue(files, postures, "catalogue/postures.toml")
    except CatalogueError as exc:
        raise ConfigError(str(exc)) from None


def _int(where: str, key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{where}: {key} must be a whole number from {lo} to {hi}, not {v!r}.")
    return v


def parse_programme(data: Any, source: str = "config", base_dir: Path | None = None) -> Programme:
    """Validate the ``[programme]`` table (module docstring); raises :class:`ConfigError`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: [programme] must be a table.")
    bad = sorted(set(data) - _TOP_KEYS)
    if bad:
        raise ConfigError(
            f"{source}: unknown programme key {bad[0]!r}; known keys: {', '.join(sorted(_TOP_KEYS))}."
        )
    responder = data.get("responder", "neither")
    if responder not in RESPONDERS:
        raise ConfigError(
            f"{source}: programme.responder must be one of {', '.join(RESPONDERS)}, not {responder!r}."
        )
    folder = data.get("exercise_folder")
    if folder is None:
        cat = load_catalogue()
    else:
        if not isinstance(folder, str) or not folder.strip():
            raise ConfigError(f"{source}: programme.exercise_folder must be a folder path, not {folder!r}.")
        path = Path(folder).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_dir():
            raise ConfigError(f"{source}: programme.exercise_folder {str(path)[:200]} is not a folder (a "
                              f"relative path is read from the folder of {source}).")
        cat = load_clinic_catalogue(path)
    entries = data.get("exercises", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: programme.exercises must list at least one [[programme.exercises]].")
    items: list[ProgrammeItem] = []
    overrides: list[Override] = []
    warnings: list[str] = []
    for i, e in enumerate(entries):
        where = f"{source}: programme.exercises[{i}]"
        if not isinstance(e, Mapping):
            raise ConfigError(f"{where} must be a table.")
        bad = sorted(set(e) - _ENTRY_KEYS)
        if bad:
            raise ConfigError(
                f"{where}: unknown key {bad[0]!r}; known keys: {', '.join(sorted(_ENTRY_KEYS))}."
            )
        name = e.get("name")
        if not isinstance(name, str) or name not in cat:
            known = ", ".join(sorted(cat.exercises))
            raise ConfigError(f"{where}: name must be an exercise of the catalogue ({known}), not {name!r}.")
        ex = cat[name]
        if ex.sides == "each":
            sides = e.get("sides", ["left", "right"])
            if not isinstance(sides, list) or not sides or any(s not in ("left", "right") for s in sides):
                raise ConfigError(f"{where}: sides must be a list of 'left' and/or 'right', not {sides!r}.")
        else:
            if "sides" in e:
                raise ConfigError(f"{where}: {name} is done with both legs together, so it takes no sides.")
            sides = [None]
        sets = _int(where, "sets", e.get("sets", ex.dose.sets), 1, 10)
        reps = holds = None
        hold_s = None
        if ex.kind == "hold":
            if "reps" in e:
                raise ConfigError(f"{where}: {name} is a hold, so it takes holds and hold_s, not reps.")
            holds = _int(where, "holds", e.get("holds", ex.dose.holds), 1, 20)
            hold_s = e.get("hold_s", ex.dose.hold_s)
        else:
            if "holds" in e:
                raise ConfigError(f"{where}: {name} is done in reps, so it takes reps, not holds.")
            reps = _int(where, "reps", e.get("reps", ex.dose.reps), 1, 100)
            hold_s = e.get("hold_s", ex.dose.final_hold_s if ex.kind == "reps_hold" else None)
        if hold_s is not None and (
            isinstance(hold_s, bool) or not isinstance(hold_s, (int, float)) or not 1 <= hold_s <= 600
        ):
            raise ConfigError(f"{where}: hold_s must be a number of seconds from 1 to 600, not {hold_s!r}.")
        advice = ex.advice(responder) if responder != "neither" else "ok"
        if advice == "avoid":
            ov = _override(where, e)
            if ov is None:
                raise ConfigError(
                    f"{where}: {ex.title} is to be avoided by {responder} responders "
                    f"({ex.responder_reason}); remove it, or add override = true with override_by and "
                    "override_reason."
                )
            overrides.append(Override(name, responder, ov[0], ov[1]))
            warnings.append(
                f"{ex.title}: marked to avoid for {responder} responders, accepted by {ov[0]} ({ov[1]})."
            )
        elif advice == "caution":
            warnings.append(f"{ex.title}: caution for {responder} responders ({ex.responder_reason}).")
        elif "override" in e:
            raise ConfigError(f"{where}: override is only for an exercise to be avoided by this patient.")
        for _ in range(sets):
            for side in sides:
                items.append(
                    ProgrammeItem(name, side, reps, holds, None if hold_s is None else float(hold_s))
                )
    return Programme(responder, items, overrides, warnings, cat)


def _override(where: str, e: Mapping[str, Any]) -> tuple[str, str] | None:
    if e.get("override") is not True:
        if "override" in e and e["override"] is not False:
            raise ConfigError(f"{where}: override must be true or false, not {e['override']!r}.")
        return None
    by, reason = e.get("override_by"), e.get("override_reason")
    if not isinstance(by, str) or not _IDENT.fullmatch(by):
        raise ConfigError(
            f"{where}: override_by must name the clinician by an identifier (letters, digits, '_', '-', "
            f"'.'), not {by!r}."
        )
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"{where}: override_reason must say why the clinician accepts the exercise.")
    return by, reason.strip()


class ExerciseRows:
    """Per-rep and per-hold rows of a session's exercise results, in the order they happened.

    Takes what a session's exercise block returned (``SessionResults.exercise_events``: the
    :class:`~hipback.processing.exercises.stream.ProgrammeEvent` of a guided programme, or the
    :class:`~hipback.processing.exercises.engine.RepResult` of a counter or of unguided recognition), in
    chunks (:meth:`take`, live) or at once; the same sequence gives the same rows however it is chunked.

    Rows (times UTC, Unix s; ``start_utc`` is the UTC of session time 0; angles in degrees):

    - ``kind`` ``rep`` or ``hold`` (one per rep or hold; a reps-with-hold exercise's final hold is a
      ``hold``): ``t_s`` (start: the movement's onset for reps, the still part for holds), ``t_end_s``,
      ``exercise``, ``work_side`` (``left``, ``right`` or ``both``), ``rep`` (numbered per exercise and side
      over the session, from 1), ``set_no`` (the programme item's number, from 1; None unguided),
      ``primary_peak_deg`` (the primary angle at its peak, in the catalogue's reference), ``range_deg``,
      ``duration_s``, ``hold_s`` (still time at the peak), ``correct_s`` (time in correct form),
      ``target_met``, ``too_short``, ``counted``, ``rules_broken`` and ``rules_not_checked``
      (comma-separated angle names), ``first_rule`` (the first broken rule's angle, empty when none),
      ``cue`` (its plain words), and the prescription: ``prescribed`` (reps or holds of the set),
      ``target_s`` (holds: prescribed seconds);
    - ``kind`` ``set`` (one per programme item announced or skipped): ``t_s`` (when it was announced),
      ``exercise``, ``work_side``, ``set_no``, ``prescribed``, ``target_s``, ``status`` (``announced`` or
      ``not_measurable``), ``text`` (what was said).

    ``hold_targets`` (exercise -> prescribed hold seconds) fills ``target_s`` for results that carry no
    prescription (unguided recordings).
    """

    def __init__(self, start_utc: float, hold_targets: Mapping[str, float] | None = None) -> None:
        self.start_utc = float(start_utc)
        self.hold_targets = dict(hold_targets or {})
        self._numbers: dict[tuple[str, str], int] = {}

    def take(self, items: Iterable[ExerciseEvent]) -> list[dict[str, Any]]:
        """Rows of the next events or results (see the class docstring)."""
        rows = []
        for ev in items:
            if isinstance(ev, RepResult):  # a counter's or unguided recognition's rep or hold
                if ev.kind in ("rep", "hold"):
                    rows.append(self._row(ev, None))
                continue
            kind = ev.kind
            if kind in ("announce", "not_measurable") and ev.exercise:
                rows.append(
                    {
                        "t_s": self.start_utc + float(ev.t),
                        "kind": "set",
                        "exercise": ev.exercise,
                        "work_side": ev.side or "both",
                        "set_no": int(ev.item) + 1,
                        "prescribed": ev.prescribed,
                        "target_s": ev.hold_s,
                        "status": "announced" if kind == "announce" else "not_measurable",
                        "text": ev.text,
                    }
                )
            elif ev.result is not None and kind in ("rep", "hold"):
                rows.append(self._row(ev.result, ev))
        return rows

    def _row(self, r: RepResult, ev: ProgrammeEvent | None) -> dict[str, Any]:
        hold = r.kind == "hold" or r.final_hold
        side = r.side or "both"
        key = (r.exercise, side)
        self._numbers[key] = self._numbers.get(key, 0) + 1
        onset = r.t_onset if math.isfinite(r.t_onset) else r.t_start
        target_s = None
        if hold:
            target_s = ev.hold_s if ev is not None else None
            if target_s is None:
                target_s = self.hold_targets.get(r.exercise)
        row = {
            "t_s": self.start_utc + float(r.t_start if hold else onset),
            "t_end_s": self.start_utc + float(r.t_end),
            "kind": "hold" if hold else "rep",
            "exercise": r.exercise,
            "work_side": side,
            "rep": self._numbers[key],
            "set_no": int(ev.item) + 1 if ev is not None else None,
            "prescribed": ev.prescribed if ev is not None else None,
            "target_s": None if target_s is None else float(target_s),
            "primary_peak_deg": math.degrees(r.primary_peak_rad),
            "range_deg": math.degrees(r.range_rad),
            "duration_s": float(r.t_end - (r.t_start if hold else onset)),
            "hold_s": float(r.hold_s) if hold else None,
            "correct_s": float(r.correct_s),
            "target_met": bool(r.target_met),
            "too_short": bool(r.too_short) if hold else None,
            "counted": bool(r.counted),
            "rules_broken": ",".join(r.rules_broken),
            "rules_not_checked": ",".join(r.rules_not_checked),
            "first_rule": r.rules_broken[0] if r.rules_broken else "",
            "cue": r.cue or "",
        }
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def exercise_rows(
    results: Iterable[ExerciseEvent], start_utc: float, hold_targets: Mapping[str, float] | None = None
) -> list[dict]:
    """Rows of a whole session's exercise events or engine results (:class:`ExerciseRows`): what the local
    store keeps (kind ``exercises``) and, for ``kind`` ``rep`` and ``hold``, what
    :func:`hipback.ingest.influx.schema.exercise_points` turns into points."""
    return ExerciseRows(start_utc, hold_targets).take(results)
