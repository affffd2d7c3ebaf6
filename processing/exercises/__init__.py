"""Exercise programmes: a catalogue of exercises as data, the engine that counts and checks them, the
programme runner and unguided recognition. Pure computation (the catalogue is read from package data only)."""

from hipback.processing.exercises.catalogue import (
    Catalogue,
    CatalogueError,
    Exercise,
    build_catalogue,
    load_catalogue,
    parse_exercise,
)
from hipback.processing.exercises.engine import ExerciseCounter, RepResult, count_batch

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Exercise",
    "ExerciseCounter",
    "RepResult",
    "build_catalogue",
    "count_batch",
    "load_catalogue",
    "parse_exercise",
]
