"""hipback's processing: body-worn IMU samples in, calibrated angles, strides, holds and activity out.

Pure computation on arrays: nothing here performs I/O, uses asyncio or imports bleak, and nothing imports
another hipback package. Conventions (``docs/biomechanics.md``): quaternions scalar first (w, x, y, z),
Hamilton product, sensor-to-world; SI units and radians inside, degrees only at the edges (summaries).

Batch: :func:`process_recording` on a :class:`Recording`. Streaming: :class:`SessionProcessor`
(``feed``/``poll``/``finish``). Every algorithm is also usable alone as a block with the same streaming
contract (:mod:`hipback.processing.blocks`). ``docs/api.md`` shows both uses.

The names below are imported from their modules when first used (PEP 562), so that importing one module of
the package (``hipback.processing.types`` for the store, say) does not import all of them and what they use
(scipy.signal and scipy.spatial take a second or more to import on a small machine, which every command
that does not process paid).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (for type checkers and editors: the same names, imported eagerly)
    from hipback.processing.acc_bias import AccBiasEstimator
    from hipback.processing.activity import ActivityBout, ActivityClassifier, classify_activity
    from hipback.processing.blocks import Block
    from hipback.processing.calibration import CalibrationSettings, SensorCalibration, calibrate_sensor
    from hipback.processing.calibration_search import CalibratedRows, CalibrationSearch
    from hipback.processing.channel import GridChunk, SensorChannel
    from hipback.processing.gait import Stride, StrideDetector, WalkingBout, detect_strides, gait_summary
    from hipback.processing.holds import Hold, HoldDetector, HoldProgress, Prescription, detect_holds
    from hipback.processing.merge import GridMerge, Rows
    from hipback.processing.orientation import OrientationEstimator, check_quaternions, orientation_errors
    from hipback.processing.pipeline import (
        PRESETS,
        ProcessorConfig,
        ProcessorUpdate,
        SessionProcessor,
        SessionResults,
        process_recording,
    )
    from hipback.processing.plausibility import PlausibilityGuard
    from hipback.processing.progress import PatientProgress
    from hipback.processing.slip import SlipMonitor
    from hipback.processing.summary import SessionSummary, build_summary
    from hipback.processing.types import PLACEMENTS, AngleSeries, Gap, Recording, SensorStream

#: public name -> the module of this package that defines it
_MODULES: dict[str, str] = {
    "PLACEMENTS": "types",
    "PRESETS": "pipeline",
    "AccBiasEstimator": "acc_bias",
    "ActivityBout": "activity",
    "ActivityClassifier": "activity",
    "AngleSeries": "types",
    "Block": "blocks",
    "CalibratedRows": "calibration_search",
    "CalibrationSearch": "calibration_search",
    "CalibrationSettings": "calibration",
    "Gap": "types",
    "GridChunk": "channel",
    "GridMerge": "merge",
    "Hold": "holds",
    "HoldDetector": "holds",
    "HoldProgress": "holds",
    "OrientationEstimator": "orientation",
    "PatientProgress": "progress",
    "PlausibilityGuard": "plausibility",
    "Prescription": "holds",
    "ProcessorConfig": "pipeline",
    "ProcessorUpdate": "pipeline",
    "Recording": "types",
    "Rows": "merge",
    "SensorCalibration": "calibration",
    "SensorChannel": "channel",
    "SensorStream": "types",
    "SessionProcessor": "pipeline",
    "SessionResults": "pipeline",
    "SessionSummary": "summary",
    "SlipMonitor": "slip",
    "Stride": "gait",
    "StrideDetector": "gait",
    "WalkingBout": "gait",
    "build_summary": "summary",
    "calibrate_sensor": "calibration",
    "check_quaternions": "orientation",
    "classify_activity": "activity",
    "detect_holds": "holds",
    "detect_strides": "gait",
    "gait_summary": "gait",
    "orientation_errors": "orientation",
    "process_recording": "pipeline",
}

__all__ = [
    "PLACEMENTS",
    "PRESETS",
    "AccBiasEstimator",
    "ActivityBout",
    "ActivityClassifier",
    "AngleSeries",
    "Block",
    "CalibratedRows",
    "CalibrationSearch",
    "CalibrationSettings",
    "Gap",
    "GridChunk",
    "GridMerge",
    "Hold",
    "HoldDetector",
    "HoldProgress",
    "OrientationEstimator",
    "PatientProgress",
    "PlausibilityGuard",
    "Prescription",
    "ProcessorConfig",
    "ProcessorUpdate",
    "Recording",
    "Rows",
    "SensorCalibration",
    "SensorChannel",
    "SensorStream",
    "SessionProcessor",
    "SessionResults",
    "SessionSummary",
    "SlipMonitor",
    "Stride",
    "StrideDetector",
    "WalkingBout",
    "build_summary",
    "calibrate_sensor",
    "check_quaternions",
    "classify_activity",
    "detect_holds",
    "detect_strides",
    "gait_summary",
    "orientation_errors",
    "process_recording",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # (found directly from now on)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
