"""The session report page (``hipback report``): one self-contained HTML file per session.

:func:`build_report` makes the page from :class:`hipback.processing.pipeline.SessionResults` (and optionally
the
recording, the patient's baseline, the prescription and data-quality figures);
:mod:`hipback.ingest.report.source`
loads all of that from the local store or from a folder written by ``hipback process``.
"""

from hipback.ingest.report.page import SessionInfo, build_report
from hipback.ingest.report.quality import DataQuality, SensorQuality, assess_quality
from hipback.ingest.report.wording import Baseline

__all__ = ["Baseline", "DataQuality", "SensorQuality", "SessionInfo", "assess_quality", "build_report"]
