"""Exercise programmes: a catalogue of exercises as data, the engine that counts and checks them, the
programme runner and unguided recognition. Pure computation (the catalogue is read from package data only).

- :mod:`~hipback.processing.exercises.catalogue`: the catalogue (a TOML file per exercise), validated on load.
- :mod:`~hipback.processing.exercises.signals`: the named angles the catalogue speaks of.
- :mod:`~hipback.processing.exercises.engine`: :class:`ExerciseCounter`, reps and holds of one exercise.
- :mod:`~hipback.processing.exercises.stream`: :class:`ExerciseBlock` (start-posture alignment + counter) and
  :class:`ProgrammeRunner` on calibrated segment orientations (:class:`SegmentFrame`).
- :mod:`~hipback.processing.exercises.recognition`: :func:`recognise`, sets from an unguided recording.
"""

from hipback.processing.exercises.catalogue import (
    Catalogue,
    CatalogueError,
    Exercise,
    build_catalogue,
    load_catalogue,
    parse_exercise,
)
from hipback.processing.exercises.engine import ExerciseCounter, RepResult, count_batch
from hipback.processing.exercises.recognition import RecognisedSet, recognise
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    ProgrammeEvent,
    ProgrammeItem,
    ProgrammeRunner,
    SegmentFrame,
    calibration_offsets,
    recording_frame,
    segment_frame,
)

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Exercise",
    "ExerciseBlock",
    "ExerciseCounter",
    "ProgrammeEvent",
    "ProgrammeItem",
    "ProgrammeRunner",
    "RecognisedSet",
    "RepResult",
    "SegmentFrame",
    "build_catalogue",
    "calibration_offsets",
    "count_batch",
    "load_catalogue",
    "parse_exercise",
    "recognise",
    "recording_frame",
    "segment_frame",
]
