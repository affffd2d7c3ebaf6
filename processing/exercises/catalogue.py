"""The exercise catalogue: one TOML file per exercise, shipped in the package, validated on load.

The engine (:mod:`hipback.processing.exercises.engine`) interprets these entries; nothing about a single
exercise is written in code. A clinic adds an exercise by adding a file (see ``docs/exercises.md``):
:func:`parse_exercise` validates a parsed TOML table (pure), :func:`load_catalogue` reads the files shipped in
``hipback/processing/exercises/catalogue/`` through :mod:`importlib.resources` (package data only; reading a
clinic's own folder is done in :mod:`hipback.ingest.programme`, which passes the parsed tables here).

Every validation error is a :class:`CatalogueError` whose message is one sentence naming the file and
the field.

Fields (angles in degrees in the files, radians in the parsed objects):

* ``name`` (identifier, equals the file stem), ``title`` (what the patient hears), ``kind``: ``hold``,
  ``reps`` or ``reps_hold`` (reps, the last one held), ``sides``: ``each`` (one side at a time, the
  *working* side) or ``both`` (both legs together).
* ``sensors``: what must be worn: ``pelvis``, ``thigh`` (the working side's thigh; both thighs for
  ``sides = "both"``), ``other_thigh``, ``lumbar_upper``.
* ``start_posture``: a name from ``postures.toml`` (where the patient rests before each rep or hold, and
  where the heading between segments is aligned).
* ``[primary]``: ``angle`` (a signal name, :data:`hipback.processing.exercises.signals.SIGNALS`),
  ``reference`` (``start``: change from the start of the rep or hold; ``neutral``: the value relative to the
  standing calibration), ``target_deg`` (the rep or hold counts from this on), ``cue`` (said when the
  target is not reached).
* ``[[rules]]``: form rules; ``angle``, ``max_deg`` (the angle may not move past this), ``reference``
  (``start`` or ``neutral``), ``both_directions`` (bool: the absolute change counts), ``cue`` (the plain
  words said when this rule is the first one broken), ``requires`` (optional list of sensors; without them
  the rule is reported as not checked, never guessed).
* ``[dose]``: ``sets``, ``reps`` (per set and side), ``holds`` (per side), ``hold_s`` (seconds per hold),
  ``final_hold_s`` (``reps_hold``), ``rest_s``.
* ``[signature]``: nominal angles (deg, relative to standing neutral) at the peak of a rep or during the hold,
  used to recognise the exercise in unguided recordings; keys are signal names.
* ``[responders]``: ``flexion`` and ``extension``: ``ok``, ``caution`` or ``avoid``, with ``reason``.
* ``[measurement]``: ``quality``: ``good``, ``partial`` (some rules need a sensor that may not be worn) or
  ``not_measurable`` (the worn sensors cannot see the exercise; it is listed so that a programme can say so),
  and ``note``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from hipback.processing.exercises.signals import SIGNALS

KINDS = ("hold", "reps", "reps_hold")
SIDES = ("each", "both")
SENSORS = ("pelvis", "thigh", "other_thigh", "lumbar_upper")
REFERENCES = ("start", "neutral")
RESPONSE = ("ok", "caution", "avoid")
QUALITY = ("good", "partial", "not_measurable")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
_TOP = {
    "name",
    "title",
    "kind",
    "sides",
    "sensors",
    "start_posture",
    "primary",
    "rules",
    "dose",
    "signature",
    "responders",
    "measurement",
    "description",
}
_DEG = math.pi / 180.0


class CatalogueError(ValueError):
    """An exercise or posture file that does not follow the catalogue format (one sentence)."""


@dataclass(frozen=True)
class Posture:
    """A start posture: the world up direction seen in the pelvis frame (ISB, unit vector; ``side_sign``
    multiplies its Z component by +1 for a right working side and -1 for a left one, for side-lying) and the
    nominal hip angles (rad) used to align the heading between pelvis and thighs."""

    name: str
    pelvis_up: tuple[float, float, float]
    side_sign: bool
    hip_flexion: float
    other_hip_flexion: float
    align: bool
    title: str = ""


@dataclass(frozen=True)
class Primary:
    angle: str
    reference: Literal["start", "neutral"]
    target: float  # rad
    cue: str


@dataclass(frozen=True)
class Rule:
    """The angle may not move past ``max_rad`` (relative to the start of the rep or hold, or to neutral)."""

    angle: str
    max_rad: float
    reference: Literal["start", "neutral"]
    both_directions: bool
    cue: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dose:
    sets: int = 1
    reps: int = 0
    holds: int = 0
    hold_s: float = 0.0
    final_hold_s: float = 0.0
    rest_s: float = 5.0


@dataclass(frozen=True)
class Exercise:
    """One catalogue entry (see the module docstring for the fields; angles in rad)."""

    name: str
    title: str
    kind: Literal["hold", "reps", "reps_hold"]
    sides: Literal["each", "both"]
    sensors: tuple[str, ...]
    start_posture: str
    primary: Primary
    rules: tuple[Rule, ...]
    dose: Dose
    signature: dict[str, float]
    responders: dict[str, str]
    responder_reason: str
    quality: str
    note: str
    description: str = ""
    source: str = ""

    def placements(self, side: str | None) -> list[str]:
        """Sensor placements needed for a working ``side`` (``None`` for ``sides = "both"``)."""
        out = []
        for s in self.sensors:
            if s == "pelvis" or s == "lumbar_upper":
                out.append(s)
            elif s == "thigh":
                out += ["thigh_left", "thigh_right"] if side is None else [f"thigh_{side}"]
            elif s == "other_thigh" and side is not None:
                out.append(f"thigh_{'right' if side == 'left' else 'left'}")
        return list(dict.fromkeys(out))

    def advice(self, profile: str) -> str:
        """``ok``, ``caution`` or ``avoid`` for a responder profile (flexion, extension, neither)."""
        return self.responders.get(profile, "ok")


@dataclass
class Catalogue:
    exercises: dict[str, Exercise]
    postures: dict[str, Posture]
    problems: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Exercise:
        try:
            return self.exercises[name]
        except KeyError:
            raise KeyError(
                f"no exercise {name!r} in the catalogue; known: {', '.join(sorted(self.exercises))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.exercises

    def __iter__(self):
        return iter(self.exercises.values())

    def measurable(self) -> list[Exercise]:
        return [e for e in self.exercises.values() if e.quality != "not_measurable"]


def _req(src: str, table: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in table:
        raise CatalogueError(f"{src}: the field {where}{key} is missing.")
    return table[key]


def _text(src: str, v: Any, key: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise CatalogueError(f"{src}: {key} must be non-empty text, not {v!r}.")
    return v.strip()


def _choice(src: str, v: Any, key: str, options: tuple[str, ...]) -> Any:
    if v not in options:
        raise CatalogueError(f"{src}: {key} must be one of {', '.join(options)}, not {v!r}.")
    return v


def _num(src: str, v: Any, key: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise CatalogueError(f"{src}: {key} must be a number, not {v!r}.")
    if not lo <= float(v) <= hi:
        raise CatalogueError(f"{src}: {key} must be between {lo:g} and {hi:g}, not {v!r}.")
    return float(v)


def _int(src: str, v: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CatalogueError(f"{src}: {key} must be a whole number from {lo} to {hi}, not {v!r}.")
    return v


def _signal(src: str, v: Any, key: str) -> str:
    if v not in SIGNALS:
        raise CatalogueError(f"{src}: {key} must be a known angle ({', '.join(sorted(SIGNALS))}), not {v!r}.")
    return v


def _unknown(src: str, table: dict[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(table) - allowed)
    if bad:
        raise CatalogueError(f"{src}: unknown field {where}{bad[0]!r}; known: {', '.join(sorted(allowed))}.")


def _table(src: str, v: Any, key: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise CatalogueError(f"{src}: [{key}] must be a table.")
    return v


def parse_posture(name: str, data: dict[str, Any], src: str) -> Posture:
    """Validate one ``[name]`` table of ``postures.toml``."""
    where = f"{src} [{name}]"
    data = _table(src, data, name)
    _unknown(
        where,
        data,
        {"title", "pelvis_up", "side_sign", "hip_flexion_deg", "other_hip_flexion_deg", "align"},
        "",
    )
    up = _req(where, data, "pelvis_up")
    if not isinstance(up, list) or len(up) != 3:
        raise CatalogueError(f"{where}: pelvis_up must be a list of three numbers, not {up!r}.")
    vec = [_num(where, c, "pelvis_up", -1.0, 1.0) for c in up]
    norm = math.sqrt(sum(c * c for c in vec))
    if not 0.9 <= norm <= 1.1:
        raise CatalogueError(f"{where}: pelvis_up must be a unit vector, its length is {norm:.2f}.")
    hip = _num(where, data.get("hip_flexion_deg", 0.0), "hip_flexion_deg", -40.0, 150.0)
    other = _num(where, data.get("other_hip_flexion_deg", hip), "other_hip_flexion_deg", -40.0, 150.0)
    side_sign = data.get("side_sign", False)
    align = data.get("align", True)
    if not isinstance(side_sign, bool) or not isinstance(align, bool):
        raise CatalogueError(f"{where}: side_sign and align must be true or false.")
    return Posture(
        name,
        (vec[0] / norm, vec[1] / norm, vec[2] / norm),
        side_sign,
        hip * _DEG,
        other * _DEG,
        align,
        str(data.get("title", name)),
    )


def parse_exercise(data: dict[str, Any], src: str, postures: dict[str, Posture]) -> Exercise:
    """Validate one parsed exercise file (``src`` names it in errors); angles become radians."""
    _unknown(src, data, _TOP, "")
    name = _req(src, data, "name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CatalogueError(f"{src}: name must be lower-case letters, digits and '_' (2-48), not {name!r}.")
    title = _text(src, _req(src, data, "title"), "title")
    kind = _choice(src, _req(src, data, "kind"), "kind", KINDS)
    sides = _choice(src, _req(src, data, "sides"), "sides", SIDES)
    sensors = _req(src, data, "sensors")
    if not isinstance(sensors, list) or not sensors:
        raise CatalogueError(f"{src}: sensors must be a non-empty list, not {sensors!r}.")
    for s in sensors:
        _choice(src, s, "sensors", SENSORS)
    if "pelvis" not in sensors:
        raise CatalogueError(f"{src}: sensors must include pelvis (every exercise needs the sacral sensor).")
    posture = _req(src, data, "start_posture")
    if posture not in postures:
        raise CatalogueError(
            f"{src}: start_posture must be one of {', '.join(sorted(postures))}, not {posture!r}."
        )
    pr = _table(src, _req(src, data, "primary"), "primary")
    _unknown(src, pr, {"angle", "reference", "target_deg", "cue"}, "primary.")
    primary = Primary(
        angle=_signal(src, _req(src, pr, "angle", "primary."), "primary.angle"),
        reference=_choice(src, pr.get("reference", "start"), "primary.reference", REFERENCES),
        target=_num(src, _req(src, pr, "target_deg", "primary."), "primary.target_deg", 1.0, 170.0) * _DEG,
        cue=_text(src, _req(src, pr, "cue", "primary."), "primary.cue"),
    )
    rules = []
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise CatalogueError(f"{src}: rules must be a list of [[rules]] tables.")
    for i, r in enumerate(raw_rules):
        where = f"rules[{i}]."
        r = _table(src, r, f"rules[{i}]")
        _unknown(src, r, {"angle", "max_deg", "reference", "both_directions", "cue", "requires"}, where)
        req = r.get("requires", [])
        if not isinstance(req, list):
            raise CatalogueError(f"{src}: {where}requires must be a list of sensors.")
        for s in req:
            _choice(src, s, f"{where}requires", SENSORS)
        both = r.get("both_directions", False)
        if not isinstance(both, bool):
            raise CatalogueError(f"{src}: {where}both_directions must be true or false, not {both!r}.")
        rules.append(
            Rule(
                angle=_signal(src, _req(src, r, "angle", where), f"{where}angle"),
                max_rad=_num(src, _req(src, r, "max_deg", where), f"{where}max_deg", -90.0, 170.0) * _DEG,
                reference=_choice(src, r.get("reference", "start"), f"{where}reference", REFERENCES),
                both_directions=both,
                cue=_text(src, _req(src, r, "cue", where), f"{where}cue"),
                requires=tuple(req),
            )
        )
    d = _table(src, _req(src, data, "dose"), "dose")
    _unknown(src, d, {"sets", "reps", "holds", "hold_s", "final_hold_s", "rest_s"}, "dose.")
    dose = Dose(
        sets=_int(src, d.get("sets", 1), "dose.sets", 1, 10),
        reps=_int(src, d.get("reps", 0), "dose.reps", 0, 100),
        holds=_int(src, d.get("holds", 0), "dose.holds", 0, 20),
        hold_s=_num(src, d.get("hold_s", 0.0), "dose.hold_s", 0.0, 600.0),
        final_hold_s=_num(src, d.get("final_hold_s", 0.0), "dose.final_hold_s", 0.0, 600.0),
        rest_s=_num(src, d.get("rest_s", 5.0), "dose.rest_s", 0.0, 600.0),
    )
    if kind in ("reps", "reps_hold") and dose.reps < 1:
        raise CatalogueError(f"{src}: dose.reps must be at least 1 for kind {kind!r}.")
    if kind == "hold" and (dose.holds < 1 or dose.hold_s <= 0):
        raise CatalogueError(f"{src}: dose.holds and dose.hold_s must be positive for kind 'hold'.")
    if kind == "reps_hold" and dose.final_hold_s <= 0:
        raise CatalogueError(f"{src}: dose.final_hold_s must be positive for kind 'reps_hold'.")
    sig_raw = _table(src, data.get("signature", {}), "signature")
    signature = {
        _signal(src, k, "signature key"): _num(src, v, f"signature.{k}", -180.0, 180.0) * _DEG
        for k, v in sig_raw.items()
    }
    resp = _table(src, _req(src, data, "responders"), "responders")
    _unknown(src, resp, {"flexion", "extension", "reason"}, "responders.")
    responders = {
        p: _choice(src, resp.get(p, "ok"), f"responders.{p}", RESPONSE) for p in ("flexion", "extension")
    }
    reason = str(resp.get("reason", ""))
    if any(v != "ok" for v in responders.values()) and not reason.strip():
        raise CatalogueError(f"{src}: responders.reason is needed when a profile is 'caution' or 'avoid'.")
    m = _table(src, _req(src, data, "measurement"), "measurement")
    _unknown(src, m, {"quality", "note"}, "measurement.")
    quality = _choice(src, _req(src, m, "quality", "measurement."), "measurement.quality", QUALITY)
    note = str(m.get("note", ""))
    if quality != "good" and not note.strip():
        raise CatalogueError(
            f"{src}: measurement.note must say what cannot be measured when quality is {quality!r}."
        )
    return Exercise(
        name=name,
        title=title,
        kind=kind,
        sides=sides,
        sensors=tuple(sensors),
        start_posture=posture,
        primary=primary,
        rules=tuple(rules),
        dose=dose,
        signature=signature,
        responders=responders,
        responder_reason=reason.strip(),
        quality=quality,
        note=note.strip(),
        description=str(data.get("description", "")).strip(),
        source=src,
    )


def parse_postures(data: dict[str, Any], src: str) -> dict[str, Posture]:
    return {name: parse_posture(name, table, src) for name, table in data.items()}


def _read_toml(text: str, src: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{src}: not valid TOML ({exc}).") from None


def build_catalogue(
    files: dict[str, str], postures_text: str, postures_src: str = "postures.toml"
) -> Catalogue:
    """Catalogue from file texts (``{file name: TOML text}``): pure, used by the loaders and the tests."""
    postures = parse_postures(_read_toml(postures_text, postures_src), postures_src)
    exercises: dict[str, Exercise] = {}
    for fname in sorted(files):
        ex = parse_exercise(_read_toml(files[fname], fname), fname, postures)
        stem = fname.rsplit("/", 1)[-1].removesuffix(".toml")
        if ex.name != stem:
            raise CatalogueError(f"{fname}: name must equal the file name ({stem!r}), not {ex.name!r}.")
        if ex.name in exercises:
            raise CatalogueError(f"{fname}: the exercise {ex.name!r} is defined twice.")
        exercises[ex.name] = ex
    return Catalogue(exercises, postures)


def shipped_files() -> tuple[dict[str, str], str]:
    """The TOML texts shipped with the package (exercise files and ``postures.toml``)."""
    root = resources.files("hipback.processing.exercises") / "catalogue"
    files = {}
    postures = ""
    for entry in root.iterdir():
        if not entry.name.endswith(".toml"):
            continue
        text = entry.read_text(encoding="utf-8")
        if entry.name == "postures.toml":
            postures = text
        else:
            files[f"catalogue/{entry.name}"] = text
    return files, postures


_CACHE: Catalogue | None = None


def load_catalogue() -> Catalogue:
    """The shipped catalogue (validated once, then cached)."""
    global _CACHE
    if _CACHE is None:
        files, postures = shipped_files()
        _CACHE = build_catalogue(files, postures, "catalogue/postures.toml")
    return _CACHE
