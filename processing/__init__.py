"""hipback's processing: body-worn IMU samples in, calibrated angles, strides, holds and activity out.

Pure computation on arrays: nothing here performs I/O, uses asyncio or imports bleak, and nothing imports
another hipback package. Conventions (``docs/biomechanics.md``): quaternions scalar first (w, x, y, z),
Hamilton product, sensor-to-world; SI units and radians inside, degrees only at the edges (summaries).

Batch: :func:`process_recording` on a :class:`Recording`. Streaming: :class:`SessionProcessor`
(``feed``/``poll``/``finish``). Every algorithm is also usable alone as a block with the same streaming
contract (:mod:`hipback.processing.blocks`). ``docs/api.md`` shows both uses.

The names below are imported from their modules when first used (PEP 562, through ``lazy_loader``), so
that importing one module of the package (``hipback.processing.types`` for the store, say) does not import
all of them and what they use (scipy.signal and scipy.spatial take a second or more to import on a small
machine, which every command that does not process paid).
"""

from __future__ import annotations

import lazy_loader

#: submodule -> the public names it defines (imported when first used)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "acc_bias": ["AccBiasEstimator"],
        "activity": ["ActivityBout", "ActivityClassifier", "classify_activity"],
        "blocks": ["Block"],
        "calibration": ["CalibrationSettings", "SensorCalibration", "calibrate_sensor"],
        "calibration_search": ["CalibratedRows", "CalibrationSearch"],
        "channel": ["GridChunk", "SensorChannel"],
        "gait": ["Stride", "StrideDetector", "WalkingBout", "detect_strides", "gait_summary"],
        "holds": ["Hold", "HoldDetector", "HoldProgress", "Prescription", "detect_holds"],
        "merge": ["GridMerge", "Rows"],
        "orientation": ["OrientationEstimator", "check_quaternions", "orientation_errors"],
        "pipeline": [
            "PRESETS", "ProcessorConfig", "ProcessorUpdate", "SessionProcessor", "SessionResults",
            "process_recording",
        ],
        "plausibility": ["PlausibilityGuard"],
        "progress": ["PatientProgress"],
        "slip": ["SlipMonitor"],
        "summary": ["SessionSummary", "build_summary"],
        "types": ["PLACEMENTS", "AngleSeries", "Gap", "Recording", "SensorStream"],
    },
)
