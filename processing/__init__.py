"""hipback's processing: body-worn IMU samples in, calibrated angles, strides, holds and activity out.

Pure computation on arrays: nothing here performs I/O, uses asyncio or imports bleak, and nothing imports
another hipback package. Conventions (``docs/biomechanics.md``): quaternions scalar first (w, x, y, z),
Hamilton product, sensor-to-world; SI units and radians inside, degrees only at the edges (summaries).

Batch: :func:`process_recording` on a :class:`Recording`. Streaming: :class:`SessionProcessor`
(``feed``/``poll``/``finish``). Every algorithm is also usable alone as a block with the same streaming
contract (:mod:`hipback.processing.blocks`). ``docs/api.md`` shows both uses.
"""

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
