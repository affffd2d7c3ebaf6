"""Mutation testing with mutmut 3, on a throw-away copy of the committed tree (never the working tree).

Run by hand or with ``make mutation`` (not part of the test suite; scores are in ``bench/README.md``)::

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python bench/mutation.py [--group lineprotocol] [--max-children 2] [--work DIR]

What it does:

1. exports ``HEAD`` (``git archive``: committed files only, so nobody's uncommitted work is read or
   touched) into ``--work`` (emptied first);
2. lays the copy out as mutmut expects an importable package: ``src/hipback/`` with ``ingest/``,
   ``processing/`` and ``simulator/`` moved under it (the wheel's ``package-dir`` mapping, made physical;
   mutmut puts ``mutants/src`` first on ``sys.path``, so the editable install of the working tree is
   never imported by the tests it runs);
3. writes a ``[tool.mutmut]`` section for the group: the files to mutate and the tests that cover them;
4. runs ``mutmut run`` on the group's mutants, then prints the score per module: killed / (killed +
   survived); timeouts count as killed (the mutant hung the tests), mutants no test reaches count as
   survived ("no tests").

Groups (``--group``, repeatable; ``all`` = every group in this order but ``processing``; ``modules`` = the
processing modules one by one): ``lineprotocol``, ``writer``,
``outbox`` (the outbox methods of ``LocalStore`` and the sync worker), ``decoders`` (``ingest/devices``),
``gait`` (``processing/gait.py`` alone),
``files_table`` (``ingest/files/table.py``, the file parser), ``exercises`` (``processing/exercises/``),
``store`` (all of ``ingest/store.py``), one group per module of ``processing/`` (``holds``, ``activity``,
``calibration``, ...: each with the tests that exercise it, minutes each) and ``processing`` (all of it at
once: hours on two cores). Each group's results and the diffs of its survivors are kept as
``results-GROUP.txt`` and ``survivors-GROUP.txt`` in the work folder.

Equivalent mutants (the mutated program behaves the same for every input the code can receive) are listed
in :data:`EQUIVALENT` with the reason, per mutant, together with a piece of the mutated line: an entry whose
mutant no longer shows that line (the code changed, mutmut renumbered) is reported as stale and not counted.
The table shows both scores: raw, and without the equivalent mutants.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST_ARGS = ["-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]

#: processing module -> the tests that exercise it (``tests/test_mutants_<module>.py`` is added to each)
PROCESSING_TESTS: dict[str, list[str]] = {
    "holds": ["tests/test_holds.py"],
    "activity": ["tests/test_activity.py"],
    "calibration": ["tests/test_calibration.py"],
    "calibration_search": ["tests/test_calibration.py", "tests/test_pipeline.py"],
    "angles": ["tests/test_angles.py"],
    "angles3d": ["tests/test_angles3d.py"],
    "orientation": ["tests/test_orientation.py"],
    "resample": ["tests/test_pipeline.py"],
    "merge": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "channel": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "plausibility": ["tests/test_pipeline.py"],
    "summary": ["tests/test_pipeline.py", "tests/test_block_contract.py", "tests/test_percentiles.py"],
    "percentiles": ["tests/test_percentiles.py"],
    "quaternion": ["tests/test_orientation.py", "tests/test_angles.py"],
    "progress": ["tests/test_progress.py"],
    "blocks": ["tests/test_block_contract.py"],
    "pipeline": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "events": ["tests/test_gait.py", "tests/test_processing_rules.py"],
    "slip": ["tests/test_exercises_slip.py", "tests/test_block_contract.py"],
    "acc_bias": ["tests/test_acc_bias.py", "tests/test_acc_bias_session.py", "tests/test_block_contract.py"],
}

#: group -> (files to mutate under src/hipback, test files, mutant name globs that count)
GROUPS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "lineprotocol": (["ingest/influx/lineprotocol.py"],
                     ["tests/test_influx_lineprotocol.py", "tests/test_influx_lineprotocol_exact.py",
                      "tests/test_schema.py", "tests/test_mutants_lineprotocol.py"],
                     ["hipback.ingest.influx.lineprotocol.*"]),
    "writer": (["ingest/influx/writer.py"],
               ["tests/test_influx_writer.py", "tests/test_influx_fuzz.py"],
               ["hipback.ingest.influx.writer.*"]),
    "outbox": (["ingest/store.py", "ingest/sync.py"],
               ["tests/test_store.py", "tests/test_sync.py", "tests/test_store_durability.py",
                "tests/test_outbox.py", "tests/test_mutants_outbox.py", "tests/test_mutants_sync.py"],
               ["hipback.ingest.store.xǁLocalStoreǁoutbox*", "hipback.ingest.sync.*"]),
    "decoders": (["ingest/devices/"],
                 ["tests/test_devices_hipback.py", "tests/test_devices_movella.py",
                  "tests/test_devices_witmotion.py", "tests/test_devices_profiles.py",
                  "tests/test_devices_vendor_bytes.py", "tests/test_decoder_gaps.py",
                  "tests/test_decoder_movella_exact.py", "tests/test_devices_mode_change.py",
                  "tests/test_mutants_hipback_v1.py",
                  "tests/test_mutants_movella_dot.py", "tests/test_mutants_witmotion.py",
                  "tests/test_mutants_devices_base.py"],
                 ["hipback.ingest.devices.*"]),
    "gait": (["processing/gait.py"], ["tests/test_gait.py", "tests/test_gait_turning.py",
                                      "tests/test_processing_rules.py", "tests/test_mutants_gait.py"],
             ["hipback.processing.gait.*"]),
    "exercises": (["processing/exercises/"],
                  ["tests/test_exercises_catalogue.py", "tests/test_exercises_contract.py",
                   "tests/test_exercises_engine.py", "tests/test_exercises_posture.py",
                   "tests/test_exercises_slip.py", "tests/test_mutants_exercises.py"],
                  ["hipback.processing.exercises.*"]),
    # the exercise package one module at a time (the whole folder takes long): the same tests
    **{f"exercises_{m}": ([f"processing/exercises/{m}.py"],
                          ["tests/test_exercises_catalogue.py", "tests/test_exercises_contract.py",
                           "tests/test_exercises_engine.py", "tests/test_exercises_posture.py",
                           "tests/test_exercises_slip.py", "tests/test_mutants_exercises.py"],
                          [f"hipback.processing.exercises.{m}.*"])
       for m in ("catalogue", "signals", "posture", "engine", "recognition", "stream")},
    "store": (["ingest/store.py"],
              ["tests/test_store.py", "tests/test_store_durability.py", "tests/test_store_lifecycle.py",
               "tests/test_outbox.py", "tests/test_mutants_store.py"],
              ["hipback.ingest.store.*"]),
    # the file parser (tests/test_fuzz_boundaries.py left out: 5 s more for every mutant it reaches)
    "files_table": (["ingest/files/table.py"],
                    ["tests/test_files_lines.py", "tests/test_files_errors.py", "tests/test_files_import.py",
                     "tests/test_files_format.py", "tests/test_files_orientation_check.py",
                     "tests/test_files_table_rows.py", "tests/test_files_table_read.py"],
                    ["hipback.ingest.files.table.*"]),
    **{m: ([f"processing/{m}.py"], [*tests, f"tests/test_mutants_{m}.py"], [f"hipback.processing.{m}.*"])
       for m, tests in PROCESSING_TESTS.items()},
    "processing": (["processing/"],
                   ["tests/test_angles.py", "tests/test_orientation.py", "tests/test_calibration.py",
                    "tests/test_gait.py", "tests/test_holds.py", "tests/test_activity.py",
                    "tests/test_progress.py", "tests/test_pipeline.py", "tests/test_processing_rules.py"],
                   ["hipback.processing.*"]),
}


#: mutant name -> (a piece of its mutated line, why no input the code can receive tells it apart)
EQUIVALENT: dict[str, tuple[str, str]] = {}


def _equivalent(reason: str, prefix: str, entries: dict[int | str, str]) -> None:
    """Register equivalent mutants ``prefix + "__mutmut_" + n`` (``n`` -> piece of the mutated line)."""
    for n, piece in entries.items():
        EQUIVALENT[f"{prefix}__mutmut_{n}"] = (piece, reason)


# -- decoders (ingest/devices) ---------------------------------------------------------------------------
_HB = "hipback.ingest.devices.hipback_v1."
_MD = "hipback.ingest.devices.movella_dot."
_WM = "hipback.ingest.devices.witmotion."
_F64 = ("numpy's default dtype is float64 (astype/array of floats) or int64 (arange, array of ints, later "
        "multiplied by a float scale): the same numbers")
# hipback v1 and Movella DOT numbering of commit cc0b125 (restart epochs, refused far-ahead sequence numbers)
_equivalent(_F64, _HB + "xǁHipbackV1Decoderǁ_values",
            {15: "astype(None)", 65: "astype(None)", 87: "astype(None)", 92: "astype(None)",
             97: "astype(None)"})
_equivalent(_F64, _HB + "xǁHipbackV1Decoderǁ_decode", {257: "dtype=None", 259: "np.arange(n, )"})
_equivalent(_F64, _MD + "xǁMovellaDotDecoderǁ_decode",
            {25: "dtype=None", 27: "i + 4]], )", 42: "dtype=None", 44: "i + 3]], )"})
_equivalent(_F64, _WM + "xǁWitMotionDecoderǁ_parse_frames", {28: "dtype=None", 30: "np.array(rows, )"})
_equivalent(_F64, _WM + "xǁWitMotionDecoderǁ_parse_register",
            {29: "dtype=None", 31: "np.array(vals[:4], )", 43: "dtype=None", 45: "np.array(vals[:3], )"})
_equivalent(_F64 + " (int64 device times stay exact below 2^63 us, 292,000 years)",
            _HB + "xǁHipbackV1Decoderǁ_decode", {238: "dtype=None", 241: "full_seq + n, )"})
_equivalent("initial value overwritten by the first packet before it is ever read",
            _HB + "xǁHipbackV1Decoderǁ__init__",
            {8: "_dev_next = None", 9: "_dev_next = 1", 10: '_last_seq: int | None = ""',
             11: '_last_time: float | None = ""', 16: '| None = ""', 17: '_last_end_us: int | None = ""',
             18: '_last_arrival: float | None = ""'})
_equivalent("initial value overwritten by the first packet before it is ever read",
            _MD + "xǁMovellaDotDecoderǁ__init__",
            {16: "self._last_data = None", 17: 'self._last_data = b"XXXX"', 20: '_last_full: int | None = ""',
             21: '_last_arrival: float | None = ""', 22: '_last_time: float | None = ""',
             23: '_stray: tuple[int, int] | None = ""'})
_equivalent("None and False are both false (the first packet leaves it as it is, the second sets it)",
            _HB + "xǁHipbackV1Decoderǁ__init__", {19: "self._stepped = None"})
_equivalent("the battery byte is a u8 (never 256), and 255 already fails battery <= 15",
            _HB + "xǁHipbackV1Decoderǁ_decode", {286: "battery != 256"})
_equivalent("seq=None is the field's default", _MD + "xǁMovellaDotDecoderǁ_decode", {231: "-seq=None,"})
_equivalent("_decode clears the stray record after every accepted packet, the resynchronised one included",
            _HB + "xǁHipbackV1Decoderǁ_resync", {16: 'self._stray = ""'})
_equivalent("a sequence step of 0 spans no time: _plausible_gap(0, ...) is always true",
            _HB + "xǁHipbackV1Decoderǁ_decode", {162: "elif delta >= 0 and not"})
_equivalent("_plausible_gap is only called after a first packet was accepted, which set the last sample's "
            "device time and arrival: the None branches are never taken",
            _HB + "xǁHipbackV1Decoderǁ_plausible_gap",
            {14: "(last is not None) or True", 23: "if last is not None else 1",
             32: "(self._last_arrival is not None) or True"})
_equivalent("_plausible_step and _new_epoch are only called after a first packet was accepted, which set its "
            "arrival: the None branches are never taken", _MD + "xǁMovellaDotDecoderǁ_plausible_step",
            {4: "(last is not None) or True"})
_equivalent("_plausible_step and _new_epoch are only called after a first packet was accepted, which set its "
            "arrival: the None branches are never taken", _MD + "xǁMovellaDotDecoderǁ_new_epoch",
            {8: "(self._last_arrival is not None) or True", 11: "is not None else 1.0"})
_equivalent("an elapsed time of 0 gives int(0.0) = 0 either way; and 1 us or 0 both lose against the sample "
            "period (at least 1 us) in max()", _MD + "xǁMovellaDotDecoderǁ_new_epoch",
            {21: "0.0 <= elapsed < 1e9", 24: "< 1e9 else 1"})
_equivalent("the epoch is 0 until the first rollover, so + and - agree on the first packet",
            _MD + "xǁMovellaDotDecoderǁ_decode", {99: "full = raw_t - self._epoch"})
_equivalent("a call with a missing argument raises TypeError, which feed() turns into the same bad_format "
            "refusal with the same arrival time", _HB + "xǁHipbackV1Decoderǁ_decode",
            {20: "_rejected(arrival_time)", 21: "_rejected(BAD_FORMAT, )",
             51: "_rejected(arrival_time)", 52: "_rejected(BAD_FORMAT, )"})
_equivalent("a per-format cache: without it the layout is rebuilt, the same",
            _HB + "xǁHipbackV1Decoderǁ_decode",
            {13: "layout = None", 14: "_dtypes.get(None)", 76: "self._dtypes[fmt] = None"})
_equivalent("a cache of StatusFlag values: without it (or with None kept) the flags are built again, the "
            "same",
            _HB + "x__status_flags", {2: "flags = None", 3: "_FLAGS.get(None)", 9: "_FLAGS[key] = None"})
_equivalent("the packet length was checked to be exactly header + n samples, so count=n changes nothing",
            _HB + "xǁHipbackV1Decoderǁ_values", {8: "offset=HEADER_SIZE)"})
_equivalent("mag is the last field of a sample: the slice ends at the row's end either way",
            _HB + "xǁHipbackV1Decoderǁ_values", {60: "col : col + 4]"})
_equivalent("a format without fields (size 0) fails the next test too, and no format has 1 byte per sample",
            _HB + "xǁHipbackV1Decoderǁ_decode", {29: "size == 1"})
_equivalent("a packet of exactly SMALL_PACKET / SMALL_TIMES samples on the numpy path: the same values and "
            "refusals (the small paths' contract, held bit for bit by tests/test_live_small_packets.py and "
            "the decoders' tests on both sides of the limit)",
            _HB + "xǁHipbackV1Decoderǁ_decode", {78: "n < SMALL_PACKET", 243: "n < SMALL_TIMES"})
_equivalent("None and False are both false", _HB + "xǁHipbackV1Decoderǁ_decode",
            {107: "restarted = None", 155: "restarted = None", 216: "stepped = None"})
_equivalent("a packet resynchronised there starts at or after the last sample (else it is a restart), and "
            "the third of increasing times cannot be at it: it is never a step back, restarted or not",
            _HB + "xǁHipbackV1Decoderǁ_decode", {156: "restarted = False"})
_equivalent("a negative sequence step is only tested for its sign (reject or restart), never used as a size",
            _HB + "xǁHipbackV1Decoderǁ_decode", {122: "delta -= 2 << 32", 123: "delta -= 1 << 33"})
_TOL = ("> or >= at a quaternion norm tolerance: |norm - 1| is a multiple of 2^-53 near 1, 0.02 and 0.01 are "
        "not (their last mantissa bits are 2^-58, 2^-59), so no norm ties")
_equivalent(_TOL, _HB + "xǁHipbackV1Decoderǁ_values", {39: ">= 0.02", 81: ">= 0.01"})
_equivalent(_TOL, _HB + "xǁHipbackV1Decoderǁ_small_values", {44: ">= 0.02"})
_equivalent(_TOL, _MD + "xǁMovellaDotDecoderǁ_decode", {68: ">= 0.01"})
_equivalent("_decode clears the stray record after every accepted packet, the resynchronised one included",
            _MD + "xǁMovellaDotDecoderǁ_resync", {27: 'self._stray = ""'})
_equivalent("at exactly MAX_GAP_RECORDS records del [:-MAX_GAP_RECORDS] removes nothing",
            "hipback.ingest.devices.base.xǁDecoderStatsǁadd_gap", {10: ">= MAX_GAP_RECORDS"})
_equivalent("two guards cap the rate list at the 8 slots; either one alone is enough", _HB + "x_parse_info",
            {6: "rest[:9]", 42: "min(n_rates, 9)"})
_equivalent("codec names are case-insensitive", _HB + "x_parse_info", {55: '"UTF-8"'})
_equivalent("codec names are case-insensitive", _MD + "x_parse_device_info", {55: '"ASCII"'})
_equivalent("the value is 34 bytes long (checked), so [28:35] is [28:34]", _MD + "x_parse_device_info",
            {52: "data[28:35]"})
_equivalent("signed and unsigned read the same for any valid date (year < 32768, fields < 128)",
            _MD + "x_parse_device_info", {21: '"<hbbbbb"'})
_equivalent("every rate the device accepts (<= 120 Hz) packs the same signed or unsigned",
            _MD + "x_device_control_write", {17: '"<h"'})
_equivalent("the modes differ in sample size, and the mode itself is excluded by m != mode",
            _HB + "xǁHipbackV1Profileǁfallback_modes", {12: "sample_size(f) <= sample_size(fmt)"})
_equivalent("every mode is in its own kind's fallback order, so the else branch is never taken",
            _MD + "xǁMovellaDotProfileǁfallback_modes", {10: "or True", 14: "else +1", 15: "else -2"})
_equivalent("flags is still NONE at that point, so = and |= agree", _MD + "x_status_flags",
            {4: "flags = StatusFlag.ACC_CLIPPING"})
_equivalent("flags is still NONE when registers are parsed (data frames come after)",
            _WM + "xǁWitMotionDecoderǁ_parse_register", {75: "out.flags = StatusFlag.LOW_BATTERY"})
_equivalent("status is the last field of its mode: the index after it is never read",
            _MD + "xǁMovellaDotDecoderǁ_decode", {37: "i = 3", 38: "i -= 3", 39: "i += 4"})
_equivalent("diff == 0 returned as a duplicate just before", _MD + "xǁMovellaDotDecoderǁ_decode",
            {144: "diff <= 0", 145: "diff < 1"})
_equivalent("0 packs the same signed or unsigned", _WM + "x_command",
            {16: "value <= 0", 17: "value < 1"})
_equivalent("the decoder only ever passes 1-D angle arrays, where axis=1 is axis=-1",
            _WM + "x_euler_zyx_to_quat", {47: "axis=+1"})
_equivalent("w == 0 exactly: q and -q are the same rotation", _WM + "x_euler_zyx_to_quat",
            {56: "q[..., :1] <= 0"})
_equivalent("w == 0 exactly: q and -q are the same rotation",
            _WM + "x__euler_zyx_to_quat_scalar", {46: "q[0] > 0"})
_NO_RANGE = "the WitMotion decoder never checks the full scale (its int16 scale is the sensor's full scale)"
_equivalent(_NO_RANGE, _WM + "xǁWitMotionDecoderǁ__init__",
            {2: "acc_range_ms2=None", 3: "gyr_range_rads=None", 5: "(rate_hz, gyr_range_rads",
             6: "acc_range_ms2, )"})
_equivalent(_NO_RANGE, _WM + "xǁWitMotionProfileǁmake_decoder",
            {3: "nearest_rate(rate_hz), )", 5: "_ranges(None)"})
_equivalent("del buf[:None] deletes the whole buffer, as del buf[:n] does",
            _WM + "xǁWitMotionDecoderǁ_decode", {27: "i = None"})
_equivalent("a data frame has 9 values: [6:10] is [6:9]", _WM + "xǁWitMotionDecoderǁ_parse_frames",
            {34: "6:10]"})
_equivalent("the battery steps give 15 or 20 %, nothing in between",
            _WM + "xǁWitMotionDecoderǁ_parse_register",
            {74: "<= 16.0"})


# -- processing/holds.py ---------------------------------------------------------------------------------
_HO = "hipback.processing.holds.xǁHoldDetectorǁ"
_WARN = "np.errstate only silences warnings on NaN comparisons; the values are the same"
_equivalent(_WARN, _HO + "_process", {33: "invalid=None", 64: "invalid=None", 82: "invalid=None"})
_equivalent(_WARN, _HO + "_posture", {51: "invalid=None"})
_equivalent("runs() returns as many stops as starts: strict or not, zip pairs them the same",
            _HO + "_advance", {8: "strict=None", 11: "stops + a, )", 14: "strict=False"})
_equivalent("a missing sample makes the smoothed angles NaN over 2h + 1 >= 3 samples starting at the run's "
            "end, and a run never starts on a bad sample, so these index bounds find the same bad samples",
            _HO + "_advance", {27: "bad_idx > lo", 28: "bad_idx <= s0", 58: "bad_idx > lo"})
_equivalent("one more sample of look-back/look-ahead or of buffer kept: the same results",
            _HO + "_configure", {37: "self._h + 3"})
_equivalent("one more sample of look-back/look-ahead or of buffer kept: the same results",
            _HO + "_keep_from", {8: "self._h - 4"})
_equivalent("slicing past the end takes the whole hold either way", _HO + "_posture", {39: "stop + start"})
_equivalent("a hold never starts in the first samples (NaN padding), so start >= 2", _HO + "_close",
            {7: "stop + start < 2"})
_equivalent("_live is only called with b beyond the samples already counted", _HO + "_live", {6: "b < lo"})
_equivalent("np.median of no holds is NaN too; float('NAN') is NaN", _HO + "summary",
            {22: "or True", 27: '"NAN"'})
_TIE = ("> or >= on a continuous quantity (speed, duration, tolerance minus 1e-12): only an exact "
        "floating-point tie tells them apart")
_equivalent(_TIE, _HO + "_process", {51: "speed < self.static_speed_rad_s"})
_equivalent(_TIE, _HO + "_close", {28: "duration <= self.min_duration_s"})
_equivalent(_TIE, _HO + "__post_init__", {1: "<= 5 * _DEG - 1e-12"})
_equivalent("both sides open with exactly the same elapsed time: the two postures exclude each other",
            _HO + "current", {23: "p.elapsed_s >= best.elapsed_s"})


# -- processing/activity.py ------------------------------------------------------------------------------
_AC = "hipback.processing.activity.xǁActivityClassifierǁ"
_equivalent(_WARN, _AC + "_back_and_forth", {4: "invalid=None"})
_equivalent(_WARN, _AC + "_labels", {93: "invalid=None"})
_equivalent("runs of labels: as many stops as starts, strict or not", _AC + "_process",
            {20: "strict=None", 23: "zip(starts, stops, )", 24: "strict=False"})
_equivalent(_F64 + " (boolean counts and labels are exact either way)", _AC + "_back_and_forth",
            {16: "astype(None)", 25: "astype(None)"})
_equivalent(_F64 + " (boolean counts and labels are exact either way)", _AC + "_labels",
            {164: "dtype=None", 167: "_KEEP, )"})
_equivalent("dead branch: finish() pads NaN rows, whose 'unknown' label has already closed the open bout",
            _AC + "finish", {2: "n = None", 5: "fs is None", 6: "_close(None, n)", 7: "window(), None)",
                             8: "_close(n)", 9: "window(), )"})
_equivalent("initial value never read: the stream starts with NaN padding (label 'unknown'), which sets it "
            "first", _AC + "__post_init__",
            {18: "_last_label = None", 20: '= ""', 21: "_new: list[ActivityBout]"})
_equivalent("one more sample of look-back/look-ahead or of buffer kept: the same results",
            _AC + "_configure", {46: "self._hl) + 3"})
_equivalent("one more sample of look-back/look-ahead or of buffer kept: the same results",
            _AC + "_keep_from", {5: "_pend[1] - 2"})
_equivalent("the first element of a longer slice is the same element", _AC + "_time", {11: "i + 2"})
_equivalent(_TIE + " (thigh speeds and swing ranges of lightly smoothed angles)", _AC + "_back_and_forth",
            {17: "du >= self.swing_speed_rad_s", 26: "du <= -self.swing_speed_rad_s"})
_equivalent(_TIE + " (thigh speeds and swing ranges of lightly smoothed angles)", _AC + "_labels",
            {149: "swing > self.walk_range_rad", 150: "swing < self.max_walk_range_rad",
             154: "split_swing > self.walk_split_range_rad",
             155: "split_swing < self.max_walk_split_range_rad",
             158: "swing <= self.walk_range_exit_rad"})


# -- processing/progress.py ------------------------------------------------------------------------------
_PR = "hipback.processing.progress."
_ASARRAY = ("the documented inputs (sequences of floats, bools, str) already give float64, bool and str "
            "arrays without the dtype")
_equivalent(_ASARRAY, _PR + "x_week_start", {3: "dtype=None", 5: "np.asarray(t_s, )"})
_equivalent(_ASARRAY, _PR + "xǁPatientProgressǁcompute",
            {**{n: "dtype=None" for n in (4, 9, 14, 26, 38, 43, 52, 61)},
             **{n: ", )" for n in (6, 11, 16, 28, 40, 45, 54, 63)}})
_NAN = "float('NAN') is NaN; np.median of nothing is NaN too"
_equivalent(_NAN, _PR + "x__median", {2: "or True", 7: '"NAN"'})
_equivalent(_NAN, _PR + "xǁPatientProgressǁcompute",
            {85: '"NAN"', 112: '"NAN"', 129: '"NAN"', 170: '"NAN"', 181: '"NAN"'})
_equivalent("an empty array's dtype", _PR + "xǁPatientProgressǁ_weekly",
            {7: "dtype=None", 9: "np.zeros(0, )"})


# -- processing/resample.py ------------------------------------------------------------------------------
_RS = "hipback.processing.resample."
_LOOPS = ("the two correction loops reach the index of the definition from any first guess, only in more "
          "steps (tested at 399 grid times per rate and one float step either side of each)")
_equivalent(_LOOPS, _RS + "x_first_grid_index", {3: "ceil(t / rate_hz)", 5: "k / rate_hz <= t", 8: "k += 2"})
_equivalent(_LOOPS, _RS + "x_last_grid_index", {3: "floor(t / rate_hz)", 4: "k * rate_hz > t",
                                                5: "k / rate_hz >= t", 6: "k = 1", 8: "k -= 2"})
_RP = _RS + "xǁGridResamplerǁpush"  # numbering of commit ab29ef8 (push changed at 18:43)
_equivalent(_F64, _RP, {31: "np.array(tt[-1:], dtype=None)", 33: "np.array(tt[-1:], )",
                        37: "np.array(qq[-1:], dtype=None)", 39: "np.array(qq[-1:], )",
                        46: "np.array(ss[-1:], dtype=None)", 48: "np.array(ss[-1:], )", 78: "dtype=None)",
                        81: "k_end + 1, )"})
_equivalent("einsum labels are case-sensitive letters: I and J are labels like i and j", _RP,
            {154: '"IJ,IJ->I"', 201: '"IJ,IJ->I"', 238: '"IJ,IJ->I"'})
_equivalent("dividing by +-1 is multiplying by it", _RP, {206: "q1 = q1 / np.where"})
_equivalent("dot == 0: two samples 180 deg apart, both ways round are equally short", _RP, {203: "dot <= 0"})
_equivalent(_WARN, _RP, {220: "invalid=None", 221: "divide=None", 222: 'errstate(divide="ignore")',
                         223: 'errstate(invalid="ignore", )'})
_equivalent("assigning None to a float array stores NaN", _RP, {255: "qo[bad] = None", 269: "so[bad] = None"})
_equivalent("a single sample reaches at most one grid point, so the axis and the [:2] of the repeat do "
            "not matter", _RP, {98: "qq[:2]", 99: "axis=1", 109: "ss[:2]"})
_equivalent("a grid point exactly on a sample: interpolated at fraction 1 of the interval before instead of "
            "0 of the one after (the same sample value, to rounding; gaps handled by both exact paths)",
            _RP, {117: "searchsorted(tt[:-1], tk, )"})
_equivalent("the common-case check only chooses the fast path; the general path gives the same rows", _RP,
            {180: "if 1.0 < np.minimum.reduce(dot)", 181: "0.0 <= np.minimum.reduce(dot)",
             184: "np.maximum.reduce(dot) <= math.inf", 186: "np.maximum.reduce(dt) < self.gap_s",
             240: "dt.max() < self.gap_s"})
_equivalent("so is None exactly when ss is None", _RP, {266: "so is not None or ss is not None"})


# -- processing/plausibility.py, processing/quaternion.py ------------------------------------------------
_PL = "hipback.processing.plausibility.xǁPlausibilityGuardǁ"  # numbering of commit 6aefe10 (changed at 18:32)
_equivalent("None and False are both false", _PL + "__init__", {26: "_finished = None"})
_equivalent(_F64, _PL + "__init__", {15: "dtype=None)", 17: "for r in ranges], )", 21: "dtype=None)",
                                     23: "for r in ranges], )"})
_FAST = ("the all-clean check only chooses the fast path; the row-by-row path gives the same rows whenever "
         "the check sends a chunk there")
_equivalent(_FAST, _PL + "__init__", {18: "[[r[1]] for r in ranges], dtype=np.float64)"})
_equivalent(_FAST, _PL + "update", {51: "clean = None",
                                    55: "(x <= self._lo)", 56: "(x >= self._hi)",
                                    58: "(np.abs(dx) >= self.max_rate_rad_s * dt).any()"})
_equivalent(_WARN, _PL + "update", {37: "invalid=None", 92: "invalid=None"})
_equivalent("each hip has its own companion thigh, so out never holds it yet", _PL + "update",
            {154: "out.get(None"})
_QM = "hipback.processing.quaternion.x_"
_equivalent(_WARN, _QM + "normalize", {13: "invalid=None", 14: "divide=None", 15: 'errstate(divide="ignore")',
                                       16: 'errstate(invalid="ignore", )'})
_equivalent(_WARN, _QM + "from_rotvec", {19: "invalid=None", 20: "divide=None",
                                         21: 'errstate(divide="ignore")', 22: 'errstate(invalid="ignore", )'})
_equivalent(_WARN, _QM + "to_rotvec", {33: "invalid=None", 34: "divide=None", 35: 'errstate(divide="ignore")',
                                       36: 'errstate(invalid="ignore", )'})
_equivalent("dividing by -1 is multiplying by it", _QM + "conjugate", {4: "/= -1.0"})
_equivalent(_F64 + " (integer inputs are promoted by the float arithmetic that follows)", _QM + "rotate",
            {5: "dtype=None", 7: "np.asarray(v, )"})
_PROMOTED = _F64 + " (integer inputs are promoted by the float arithmetic that follows)"
_equivalent(_PROMOTED, _QM + "from_axis_angle",
            {3: "dtype=None", 5: "np.asarray(axis, )", 21: "dtype=None", 23: "np.asarray(angle, )"})
_equivalent(_F64 + " (integer inputs are promoted by the float arithmetic that follows)", _QM + "from_rotvec",
            {3: "dtype=None", 5: "np.asarray(rotvec, )"})
_equivalent(_F64 + " (integer inputs are promoted by the float arithmetic that follows)", _QM + "from_matrix",
            {3: "dtype=None", 5: "np.asarray(m, )"})
_equivalent(_F64 + " (scipy returns float64)", _QM + "from_scipy", {3: "dtype=None", 5: "[3, 0, 1, 2]], )"})
_equivalent(_F64 + " (integer inputs are promoted by the float arithmetic that follows)", _QM + "slerp",
            {3: "dtype=None", 5: "np.asarray(t_src, )", 8: "dtype=None", 10: "np.asarray(t_dst, )"})
_SMALL = ("below 1e-12 rad the series 0.5 - a^2/48 is 0.5 to double precision whatever its second term, and "
          "the inner guard only matters at exactly 0, where the outer choice already takes the series")
_equivalent(_SMALL, _QM + "from_rotvec", {34: "angle >= 1e-12", 44: "angle >= 0, angle", 46: "angle, 2.0)",
                                          47: "0.5 + angle**2", 49: "angle**2 * 48.0", 51: "angle**3",
                                          52: "/ 49.0"})
_equivalent(_SMALL, _QM + "to_rotvec", {48: "vn >= 1e-12", 57: "vn >= 0, vn", 59: "vn, 2.0)"})
_equivalent("w == 0 exactly: a half turn, the same rotation about +axis or -axis", _QM + "to_rotvec",
            {11: "q[..., :1] <= 0"})
_equivalent("numpy reads any negative size in reshape as 'the rest'", _QM + "from_matrix", {16: "reshape(-2"})
_equivalent("numpy reads any negative size in reshape as 'the rest'", _QM + "to_scipy", {8: "reshape(-2"})
_equivalent("an index past a sample inside the range is always >= 1, so the lower clip never acts",
            _QM + "slerp", {35: "None, len(t_src) - 2"})
_equivalent("a time exactly on a sample: the end of the interval before (the same rotation, to rounding)",
            _QM + "slerp", {46: "t_dst[inside], )"})
_equivalent("only where t1 == t0, where the outer where already gives 0", _QM + "slerp",
            {64: "t1 >= t0, (t_dst", 73: "np.where(t1 >= t0, t1 - t0", 75: "t1 - t0, 2.0)"})
_equivalent("the sign alignment is redundant: to_rotvec already takes the short way (w >= 0)", _QM + "slerp",
            {82: "np.where(None, -q1, q1)", 89: "axis=None", 92: "np.sum(q0 * q1, keepdims=True)",
             94: "q0 / q1", 95: "axis=+1", 98: "<= 0, -q1", 99: "< 1, -q1", 100: "+q1, q1"})


# -- processing/percentiles.py ---------------------------------------------------------------------------
_PC = "hipback.processing.percentiles.xǁBinnedPercentilesǁ"
_equivalent("values of any numeric dtype give the same bins (the scaling to bins is in float64 either way)",
            _PC + "update", {3: "dtype=None", 5: "np.asarray(values, )"})
_equivalent("concatenating a single array gives the same values", _PC + "_flush",
            {4: "or True", 6: ">= 1"})
_equivalent("counts below 2^53 are exact in float64 too: the same cumulative sums and searches",
            _PC + "_flush", {18: "dtype=None", 20: "+ 1, )"})
_equivalent("counts exist exactly when a value was counted: either condition alone decides",
            _PC + "percentile", {2: "is None and n == 0"})
_equivalent("hi only past n - 1 at q = 100, where its weight (rank - lo) is 0", _PC + "percentile",
            {22: "n + 1)"})


# -- processing/summary.py -------------------------------------------------------------------------------
_SU = "hipback.processing.summary."
_equivalent("'' and None are both false for 'implausible or {}'", _SU + "xǁSessionSummaryǁ__init__",
            {13: '| None = ""'})
_equivalent("t only gives the duration, 0 for fewer than two rows either way",
            _SU + "xǁSessionSummaryǁfinish", {6: "np.zeros(1)"})
_equivalent("t only gives the duration, 0 for fewer than two rows either way", _SU + "x_build_summary",
            {14: "len(t) >= 1"})
_equivalent("_deg(None) and _deg(NaN) are both None", _SU + "x_build_summary", {132: "default=None"})
_equivalent("a missing count read as None or 0: both false", _SU + "x_build_summary",
            {232: 'c.get("range", None)', 234: 'c.get("range", )', 239: 'c.get("rate", None)',
             241: 'c.get("rate", )'})


# -- processing/merge.py, angles.py, blocks.py -----------------------------------------------------------
_ME = "hipback.processing.merge."  # numbering of commit a846869 (live-step features on Python floats)
_equivalent("every part has the same placements", _ME + "xǁRowsǁconcat", {6: "parts[1].q"})
_equivalent("a slice of every row is a Rows of the same arrays (views) as the rows themselves",
            _ME + "xǁRowsǁslice", {4: "b > len(self.k)"})
_equivalent(_PROMOTED + " (booleans)", _ME + "xǁGridMergeǁ__init__",
            {32: "for p in self.placements], dtype=None)", 34: "for p in self.placements], )"})
_equivalent("the previous orientations are only read into a float buffer, where None is stored as NaN",
            _ME + "xǁGridMergeǁ__init__", {24: "self._prev_q = None", 26: "4), None)"})
_equivalent("None and False are both false", _ME + "xǁGridMergeǁ__init__", {40: "_finished = None"})
_equivalent("None and False are both false", _ME + "xǁGridMergeǁupdate", {2: "final=None"})
_equivalent("redundant wait: when the newest row is at most lag rows past the first, the lag rule's end "
            "is at or before the first row anyway, so nothing is released either way",
            _ME + "xǁGridMergeǁ_merge", {18: "max(ends_list) + min(present)", 21: "min(present) < lag"})
_equivalent("the contiguous fast path and the general path give the same rows", _ME + "xǁGridMergeǁ_merge",
            {89: "k_first > a", 91: "k_first - 1 ==", 92: "k_last + k_first + 1", 93: "k_first + 2 =="})
_equivalent("the kept rest of a chunk is filed under its placement; the chunk's own label is not read again",
            _ME + "xǁGridMergeǁ_merge", {140: "GridChunk(None"})
_equivalent(_WARN, _ME + "xǁGridMergeǁ_merge", {153: "invalid=None"})
_equivalent(_WARN, _ME + "xǁGridMergeǁ_features", {36: "invalid=None"})
_equivalent("a placeholder replaced by _features before the rows leave", _ME + "xǁGridMergeǁ_merge",
            {164: "motion, None, {}", 181: "np.zeros(0, dtype=None)", 183: "np.zeros(0, ), {}",
             184: "np.zeros(1, dtype=bool)"})
_equivalent(_F64, _ME + "xǁGridMergeǁ_merge", {176: "dtype=None), q", 179: "np.arange(a, end, )"})
_equivalent("einsum labels are case-sensitive letters: I and J are labels like i and j",
            _ME + "xǁGridMergeǁ_features", {48: '"IJ,IJ->I"'})
_equivalent(_TIE, _ME + "xǁGridMergeǁ_features", {65: "speed <= self.still_gyr_rad_s",
                                                  67: "np.abs(up_x) >= self._cos_tilt"})
_equivalent("a missing sample is NaN in every component", _ME + "xǁGridMergeǁ_features",
            {75: "buf[:, 1:, 1]"})
_equivalent("a step of SMALL_CHUNK rows or one more or fewer on the other path: the same bits (the small "
            "path's contract, held by tests/test_live_small_steps.py and test_mutants_merge.py)",
            _ME + "xǁGridMergeǁ_features", {6: "m + 1 <= SMALL_CHUNK", 7: "m - 2 <= SMALL_CHUNK",
                                            8: "m - 1 < SMALL_CHUNK"})
_equivalent("dead test: a row whose quaternion is not finite has a NaN speed and sent the step to numpy "
            "before (the band test fails for NaN), so may_miss is never read with a non-finite w1",
            _ME + "xǁGridMergeǁ_features_small", {19: "may_miss = None", 20: 'may_miss = p == "pelvis"',
                                                  21: '"XXpelvisXX"', 22: '"PELVIS"'})
_equivalent("d == 0 fails the band test just before (abs(d) > 1e-9 (sq + thr^2) >= 0), so the step went to "
            "numpy", _ME + "xǁGridMergeǁ_features_small", {101: "slow = d <= 0"})
_equivalent(_TIE + " (the tilt of the sensor's x axis)", _ME + "xǁGridMergeǁ_features_small",
            {114: ">= cos_tilt"})
_equivalent("a band test that sends every row to numpy (the reference path) gives numpy's bits",
            _ME + "xǁGridMergeǁ_features_small", {97: "1.000000001 * (sq + thr2)"})
_equivalent(_F64, _ME + "xǁGridMergeǁ_features_small", {132: "dtype=None)", 134: "np.array(w_rows, )"})
_equivalent("dead branch (see may_miss above): break or continue there is never reached",
            _ME + "xǁGridMergeǁ_features_small", {119: "break"})
_equivalent("a boolean array stores None as False", _ME + "xǁGridMergeǁ_features_small",
            {120: "still_l[r - 1] = None"})
_equivalent("returning False after the small path set omega and still makes the numpy path compute the same "
            "values over them", _ME + "xǁGridMergeǁ_features_small", {145: "return False"})
_equivalent("a wider band sends more rows to numpy, which decides a row whose d is clearly signed as the "
            "Python sum does", _ME + "xǁGridMergeǁ_features_small", {96: "1e-9 / (sq + thr2)"})
_equivalent(_TIE + " (|d| exactly at the band)", _ME + "xǁGridMergeǁ_features_small",
            {95: "not abs(d) >= 1e-9"})
_equivalent("end == a: the general path builds zero rows of the same layout (and keeps the previous "
            "orientations as they are)", _ME + "xǁGridMergeǁ_merge", {43: "if end < a:"})
_equivalent(_PROMOTED + " (booleans)", _ME + "xǁGridMergeǁ_features_small",
            {142: "np.array(still_l, dtype=None)", 144: "np.array(still_l, )"})
_AN = "hipback.processing.angles."  # numbering of commit 5b5b978 (angles.py changed during this session)
_equivalent(_PROMOTED, _AN + "x_axes_vertical_components", {3: "dtype=None", 5: "np.asarray(q_seg, )"})
_equivalent(_PROMOTED, _AN + "xǁMotionSmootherǁupdate", {3: "dtype=None", 5: "np.asarray(x, )"})
_equivalent(_PROMOTED, _AN + "x_compute_angles", {27: "dtype=None", 29: "names[0]], )", 34: "dtype=None",
                                                  36: "segments[name], )", 102: "dtype=None",
                                                  104: "np.asarray(t, )", 115: "dtype=None",
                                                  117: "np.asarray(pelvis_motion, )"})
_equivalent("a one-sample window keeps no tail: buf[len(buf):] is empty too",
            _AN + "xǁMotionSmootherǁupdate", {14: "or True", 18: "self.window >= 1"})
_equivalent(_WARN, _AN + "x_joint_angle", {3: "invalid=None"})
_equivalent(_F64 + " (a strided view of a float64 buffer)", _AN + "xǁMotionSmootherǁupdate",
            {25: "dtype=None, buffer=buf", 29: "self.window), buffer=buf"})
_equivalent("a placeholder overwritten when the pelvis is there", _AN + "x_compute_angles",
            {16: "(q_p is None) or True"})
_equivalent("a Block compared with a non-block is unequal on both paths",
            "hipback.processing.blocks.x_params_equal", {4: "isinstance(x, Block) or isinstance(y, Block)"})


# -- processing/angles3d.py ------------------------------------------------------------------------------
_A3 = "hipback.processing.angles3d.x_"
_equivalent("R[0][0] is computed but no angle reads it", _A3 + "_matrix_parts",
            {15: '"XX00XX"', 16: "1 + 2 * (y * y + z * z)", 17: "2 - 2 * (y * y + z * z)",
             18: "1 - 2 / (y * y + z * z)", 19: "1 - 3 * (y * y + z * z)", 20: "(y * y - z * z)",
             21: "(y / y + z * z)", 22: "(y * y + z / z)"})
_equivalent(_PROMOTED, _A3 + "_matrix_parts", {9: "dtype=None", 11: "np.asarray(q, )"})
_equivalent("from_axis_angle normalises the axis: (0, 0, 2) is (0, 0, 1)", _A3 + "hip_rotation_quat",
            {17: "[0.0, 0.0, 2.0]", 27: "[2.0, 0.0, 0.0]", 41: "[0.0, 2.0, 0.0]"})
_equivalent("from_axis_angle normalises the axis: (0, 0, 2) is (0, 0, 1)", _A3 + "align_heading",
            {11: "[0.0, 0.0, 2.0]"})
_equivalent(_PROMOTED, _A3 + "hip_rotation_quat", {19: "dtype=None", 21: "np.asarray(flexion, )",
                                                   32: "dtype=None", 34: "np.asarray(adduction, )",
                                                   45: "dtype=None", 47: "np.asarray(internal, )"})
_equivalent(_PROMOTED, _A3 + "vertical_twist", {3: "dtype=None", 5: "np.asarray(q, )"})
_equivalent(_PROMOTED, _A3 + "heading_offset", {10: "dtype=None", 12: "np.asarray(r_known, )"})
_equivalent(_PROMOTED, _A3 + "body_angles", {3: "dtype=None", 5: "np.asarray(t, )"})
_equivalent(_NAN, _A3 + "heading_offset", {31: '"NAN"'})
_equivalent(_TIE, _A3 + "posture_reference", {17: "np.abs(gz) >= lying_on_side_limit"})
_equivalent("zero adduction and rotation: a scalar zero broadcasts the same, and the side's sign does not "
            "matter", _A3 + "posture_reference", {19: "zeros_like(None)", 23: "zero, zero, None)"})


# -- processing/orientation.py ---------------------------------------------------------------------------
_OR = "hipback.processing.orientation."
_OE = _OR + "xǁOrientationEstimatorǁupdate"
_equivalent(_PROMOTED, _OE, {3: "dtype=None", 5: "np.asarray(t, )", 25: "dtype=None", 28: "np.full(n, -1, )",
                             49: "dtype=None", 51: "np.asarray(acc, )", 54: "dtype=None",
                             56: "np.asarray(gyr, )", 68: "dtype=None", 70: "np.asarray(mag, )",
                             163: "dtype=None", 166: "np.full(n, self._segment, )"})
_equivalent(_WARN, _OE, {86: "over=None", 87: "invalid=None", 88: 'errstate(invalid="ignore")',
                         89: 'errstate(over="ignore", )'})
_equivalent("only whether the sum is finite is used: a difference of finite squares is finite too",
            _OE, {95: "acc) - np.einsum"})
_equivalent("einsum labels are case-sensitive letters: I and J are labels like i and j", _OE,
            {103: '"IJ,IJ->I"', 111: '"IJ,IJ->I"'})
_equivalent("the fast path and the row-by-row path give the same quaternions", _OE,
            {117: "t[0] + (self._last_t"})
_equivalent("skipped=0 is the field's default; VQF's rest flags are already boolean", _OE,
            {178: "resets, )", 180: "dtype=None), resets", 182: 'r["restDetected"], ), resets'})
_equivalent(_TIE + " (the row-by-row path does not reset on a tie either)", _OE,
            {124: "first < self.gap_s", 131: "<"})
_equivalent("runs between resets: as many ends as starts", _OE,
            {224: "strict=None", 227: "bounds[1:], )", 231: "strict=False"})
_CQ = _OR + "x_check_quaternions"  # numbering of commit 757ddf8 (the function changed during this session)
_equivalent(_WARN, _CQ, {33: "invalid=None", 34: "divide=None", 35: 'errstate(divide="ignore")',
                         36: 'errstate(invalid="ignore", )'})
_equivalent("assigning None to a float array stores NaN", _CQ, {57: "out[bad] = None"})
_equivalent("quaternion rows (N, 4): axis 1 is the last axis", _CQ, {11: "axis=+1"})
_equivalent(_TIE, _CQ, {23: "initial=0.0) < tol", 48: "norm <= 1e-9", 50: "dev >= 10 * tol",
                        56: "dev >= tol"})
_equivalent("the unit-norm fast path and the general path give the same rows (1-D dev: every axis choice is "
            "the same reduction; a channel never checks an empty chunk)", _CQ,
            {18: "initial=None", 20: "np.maximum.reduce(dev, initial=0.0)", 21: "axis=None, )",
             22: "initial=1.0"})
_OX = _OR + "x_orientation_errors"
_equivalent(_WARN, _OX, {46: "invalid=None", 47: "divide=None", 48: 'errstate(divide="ignore")',
                         49: 'errstate(invalid="ignore", )'})
_equivalent("from_axis_angle normalises the axis: (0, 0, 2) is (0, 0, 1)", _OX, {24: "[0.0, 0.0, 2.0]"})
_equivalent("the clipped value is an absolute value or a root, never below 0", _OX,
            {37: "None, 1.0", 67: "None, 1.0"})
_equivalent("the mask is boolean (documented), so its dtype changes nothing", _OX,
            {90: "dtype=None", 92: "np.asarray(mask, )"})


# -- processing/channel.py -------------------------------------------------------------------------------
_CH = "hipback.processing.channel.xǁSensorChannelǁ"  # numbering of commit 5b5b978 (channel.py changed)
_equivalent("None and False are both false", _CH + "__init__", {45: "_finished = None"})
_equivalent(_PROMOTED, _CH + "_empty", {14: "dtype=None", 16: "np.zeros(0, )"})
_equivalent(_PROMOTED, _CH + "update", {6: "dtype=None", 8: "np.asarray(chunk.t, )"})
_equivalent("sends every chunk down the general path, which gives the same rows", _CH + "update",
            {34: "bool(None)", 37: "np.minimum.reduce(d) > 1"})
_equivalent(_TIE, _CH + "update", {46: "t[0] - self._last_t >= self._gap_s", 51: ">= self._gap_s",
                                   56: "d >= self._gap_s", 101: "steps >= self._gap_s"})
_equivalent("an estimator built 6D (use_mag=False) ignores a magnetometer handed to it", _CH + "update",
            {146: "and False else chunk.mag"})
_equivalent(_WARN, _CH + "update", {201: "invalid=None"})
_equivalent("einsum labels are case-sensitive letters: I and J are labels like i and j", _CH + "update",
            {214: '"IJ,IJ->I"'})


# -- processing/events.py, gait.py, slip.py --------------------------------------------------------------
_EV = "hipback.processing.events."
_EW = _EV + "xǁWindowedStreamǁ"
_equivalent(_F64 + " (integer taps and 0/1 flags: the same numbers, the same comparisons)",
            _EV + "x_triangular_kernel", {9: "astype(None)"})
_equivalent(_F64 + " (integer taps and 0/1 flags: the same numbers, the same comparisons)", _EV + "x_runs",
            {11: "astype(None)"})
_equivalent("initial value overwritten when the rate becomes known, and never read before (every use waits "
            "for fs)", _EW + "__init__", {9: "_batch = None", 10: "_batch = 2", 15: "self.base = None",
                                           16: "self.base = 1", 22: "self.lookback = None",
                                           23: "self.lookback = 1", 24: "self.lookahead = None",
                                           25: "self.lookahead = 1"})
_equivalent("None and False are both false", _EW + "__init__", {26: "self.finished = None"})
_equivalent("cut == 0: slicing [0:] keeps every row and base is already keep", _EW + "_run", {27: "cut >= 0"})
_equivalent("no output (n_out == 0): the loop sums empty slices into the same empty float array",
            _EV + "x_smooth", {5: "if n_out < 0:"})
_equivalent(_PROMOTED + " (a chunk's field is concatenated onto the float64 buffer)", _EV + "x__field",
            {14: "dtype=None", 16: "np.asarray(v, )"})
_equivalent("a one-sample slice has no step to check: jump[1:] is empty either way", _EV + "x_feature_slice",
            {26: "len(t) >= 1"})
_equivalent(_WARN, _EV + "x_feature_slice", {30: "invalid=None"})
_equivalent("assigning None to a float array stores NaN", _EV + "x_feature_slice", {41: "x[jump] = None"})
_GA = "hipback.processing.gait."
_SD = _GA + "xǁStrideDetectorǁ"  # numbering of commit 7ef77a2 (turning flag and heading change)
_equivalent("initial value never read as such: _prev_accepted only together with _prev (None until the first "
            "decision); update() and finish() reset _new before use", _SD + "__post_init__",
            {49: "_prev_accepted = None", 50: "_prev_accepted = True", 51: "_new: list[Stride] = None"})
_equivalent("one more sample of look-back/look-ahead or of buffer kept: the same results", _SD + "_configure",
            {77: "max(1.0, -self.ic_search[0])", 84: "max(self._g, self._h) + 4",
             92: "self._w + self._h + 3,", 106: "self._w + self._h + 3, math.ceil", 112: "self._h + 6)"})
_equivalent("without the impact's low-pass its half width only pads the thigh slice by one sample that is "
            "cut off again, and g >= 1 from the derivative kernels' floors either way", _SD + "_configure",
            {54: "self._hh = 1 if"})
_equivalent("_ic_back already holds max(g, h) + 3, so it is the larger term either way", _SD + "_keep_from",
            {13: "self._h - 3", 14: "self._h + 4"})
_equivalent("right is read only at peaks, at least 2 samples from its end: a shorter or longer slice holds "
            "the same values there", _SD + "_process", {36: "s[w + 1 : w - 1 + len(mx)]",
                                                        37: "s[w + 1 : w + 2 + len(mx)]"})
_equivalent("assigning None to a boolean array stores False", _SD + "_process",
            {42: "is_peak[:2] = None", 45: "is_peak[len(mx) - 2 :] = None"})
_equivalent("the first element of a longer slice is the same element", _SD + "_process", {61: "stop + 3)"})
_DEN = ("a peak or flank is strictly above its left neighbour and not below its right one: "
        "y0 - 2 y1 + y2 < 0 always (the else branch is dead) and |0.5 (y0 - y2) / den| <= 0.5 (the clip "
        "never acts)")
_equivalent(_DEN, _SD + "_process", {71: "(den < 0) or True", 76: "if den <= 0 else", 77: "if den < 1 else",
                                     78: "else 1.0", 89: "max(off, -1.5)", 90: "max(off, -0.5), 1.5)"})
_equivalent("_on_peak decides every candidate but the newest, so at most one is pending here and none "
            "follows it", _SD + "_process", {112: "len(self._pending) > 2", 113: "len(self._pending) >= 3",
                                            123: "self._decide(c, None)", 126: "(self._pending) and False",
                                            128: "self._pending[1] if"})
_equivalent("the loop at the end of _process decides the same candidate with the same successor in the same "
            "call (decisions and new candidates touch different state)", _SD + "_on_peak",
            {9: "len(self._pending) > 2", 10: "len(self._pending) >= 3"})
_equivalent("only the sign is tested: -1 and -2 both mean none", _SD + "_contact", {56: "centre = -2"})
_equivalent(_WARN, _SD + "_contact", {81: "invalid=None"})
_equivalent("an all-NaN window gives a NaN range, which fails >= like 0.0 does (numpy only warns)",
            _SD + "_contact", {86: "(np.isfinite(acc).any()) or True"})
_equivalent("the first element of a longer slice is the same element", _SD + "_contact",
            {137: "lo + j + 2)[0]", 157: "lo + centre + 2)[0]"})
_equivalent(_TIE + " (flank steepness)", _SD + "_sacral_contact", {91: "sharp = r > self.ic_sharpness"})
_equivalent("r > steep[j - 1] >= 0 already makes r > 0", _SD + "_sacral_contact",
            {97: "if r >= 0 and r > steep"})
_equivalent(_TIE + " (the smooth rule's low-passed derivative exactly equal to its left neighbour at its "
            "maximum, which argmax, taking the first of equal values, leaves only at the window's first "
            "sample)", _SD + "_sacral_contact", {38: "y1 >= y0"})
_equivalent("triangular_kernel(0) is [1.0]: smoothing by it is the identity", _SD + "_thigh_impact",
            {26: "(h > 0) or True", 31: "h >= 0"})
_equivalent("comparisons with NaN and differences of finite values with +-inf or NaN raise no floating-point "
            "warning; np.errstate only silences warnings", _SD + "_thigh_impact",
            {82: "invalid=None", 122: "invalid=None"})
_equivalent("the first element of a longer slice is the same element", _SD + "_thigh_impact",
            {162: "lo + j + 2)[0]", 213: "lo + k + 2)[0]"})
_equivalent(_TIE + " (the smooth rule's low-passed steepest rise exactly min_smooth_rise_m_s3)",
            _SD + "_sacral_contact", {37: "y1 > self.min_smooth_rise_m_s3"})
_equivalent("a found flank is steeper than 0, so its derivative is never exactly 0", _SD + "_shoulder",
            {2: "if rise[j] >= 0]"})
_equivalent(_TIE + " (the smoothed derivative exactly 0 at a sample)", _SD + "_shoulder",
            {34: "rise[m - 1] >= 0 >= rise[m]", 36: "rise[m - 1] > 0 > rise[m]"})
_equivalent("on a uniform timeline (the input contract) peaks max_n + 1 or more samples apart are more than "
            "max_stride_s apart (sub-sample offsets within +-0.5, strictly above -0.5), so the duration test "
            "rejects them anyway", _SD + "_candidate", {6: "n >= self._max_n + 1", 8: "self._max_n + 2 or"})
_INVALID = ("an invalid candidate: valid None is false; its swing range is never read; valid with a NaN "
            "range is dissimilar to every neighbour, so never accepted either")
_equivalent(_INVALID, _SD + "_candidate", {14: 'p1, None, float("nan"))', 15: "p1, False, None)",
                                           20: 'p1, True, float("nan"))',
                                           156: 'p1, None, float("nan"))', 157: "p1, False, None)",
                                           162: 'p1, True, float("nan"))', 195: "p1, None, rng)",
                                           196: "p1, False, None)"})
_equivalent(_NAN, _SD + "_candidate", {23: '"NAN"', 165: '"NAN"', 263: '"NAN"'})
_equivalent("a set of two sources is never all three: strict and non-strict subset agree", _SD + "_candidate",
            {44: "{src0, src1} < {"})
_equivalent("contacts fewer than 3 samples apart are never within 15 % of a cycle of at least 0.7 s (nor "
            "of a previous contact-to-contact time), so the time test already fails", _SD + "_candidate",
            {53: "b + a >= 2 and abs", 54: "b - a > 2 and abs", 55: "b - a >= 3 and abs",
             68: "and b + a >= 2", 69: "and b - a > 2", 70: "and b - a >= 3"})
_equivalent(_TIE + " (contact-to-contact times)", _SD + "_candidate",
            {59: "< self.ic_mismatch * dur", 80: "< self.ic_mismatch * prev[2]"})
_equivalent("at exactly phase_memory entries the deletion removes nothing ([:0])", _SD + "_candidate",
            {108: ">= self.phase_memory"})
_equivalent("sources of equal confidence are the same source", _SD + "_candidate",
            {122: "< _IC_CONFIDENCE[src1] else"})
_equivalent("max - min of an array holding NaN is NaN anyway", _SD + "_candidate",
            {280: "(np.all(np.isfinite(tilt))) or True", 287: "(np.all(np.isfinite(lumbar))) or True"})
_equivalent(_TIE + " (thigh extension in terminal stance)", _SD + "_candidate", {315: "d_thigh >= 2 * _DEG"})
_equivalent(_TIE + " (ratios of stride times and swing ranges)", _SD + "_similar",
            {20: "1 / c < ra", 21: "ra < c and"})
_equivalent("a previous candidate that does not share the first peak only follows a forgotten last peak, "
            "which closed the bout already; an adjacent rejected one closed it when rejected",
            _SD + "_decide",
            {31: "self._prev_accepted or self._prev"})
_equivalent(_F64 + " (integer offsets divided by sigma: the same floats)", _GA + "x__derivative_kernel",
            {13: "dtype=None", 16: "g + 1, )"})
_equivalent(_F64 + " (integer offsets divided by sigma: the same floats)", _GA + "x__gauss_kernel",
            {20: "dtype=None", 23: "g + 1, )"})
_equivalent(_NAN, _GA + "x_gait_summary", {4: '"NAN"', 9: "(len(arr)) or True"})
# numbering of commit 3f6b7da (bridged peaks, the stride's margins, the sacral rise, the fitted values)
_equivalent(_F64 + " (scipy's Savitzky-Golay coefficients are float64)", _GA + "x__quadratic_kernel",
            {9: "dtype=None", 11: "2), )"})
_equivalent("the edges of the missing runs come in pairs (a run's start and its end, the ends padded), so "
            "zip's strictness never acts", _GA + "x__bridge",
            {14: "strict=None", 17: "edges[1::2], )", 21: "strict=False"})
_equivalent("the first element of a longer slice is the same element", _SD + "_rise", {48: "lo + j + 2)[0]"})
_equivalent("trimming a list once it reaches the memory rather than once it exceeds it: del x[:0] removes "
            "nothing, so it holds the same last phase_memory values either way", _SD + "_candidate",
            {111: "len(self._phases) >= self.phase_memory", 120: "len(self._lags) >= self.phase_memory"})
_equivalent(_TIE + " (the low-passed rise exactly equal to a neighbour at its maximum, or exactly "
            "min_smooth_rise_m_s3)", _SD + "_rise",
            {32: "y1 >= y0 and", 33: "y1 > y2 and", 34: "y1 > self.min_smooth_rise_m_s3"})
_SM = "hipback.processing.slip.xǁSlipMonitorǁ"  # numbering of commit cc0b125 (windows in time order)
_equivalent("initial value never read as such: a still period at the first checked row has no walking "
            "before it either way; swap is set with the first calibration before any use; update() resets "
            "_out; None and False are both false", _SM + "__init__",
            {21: "_still_prev = True", 33: "_swap = None", 34: "_swap = True", 40: "= None",
             41: "_finished = None"})
_equivalent("after the chunk's standing windows are checked only the latest still-period start can be asked "
            "about again", _SM + "update", {36: "del self._runs[:-65]"})
_equivalent("row indices are int64 and stillness is boolean already (Rows)", _SM + "_track_still_periods",
            {74: "dtype=None)", 76: "np.asarray(rows.k, )", 88: "dtype=None)",
             90: "np.asarray(rows.still, )"})
_equivalent("zip(strict=...) of lists of equal lengths (one flag per row of the step)",
            _SM + "_track_still_periods", {21: "strict=None)]", 23: "zip(*flags, )]", 24: "strict=False)]",
                                          28: "every, strict=None)", 31: "zip(kl, every, )",
                                          32: "every, strict=False)", 39: "still, strict=None)",
                                          42: "zip(kl, still, )", 43: "still, strict=False)"})
_equivalent("walking rows are counted only after k0 - window for a still period starting at k0 after the "
            "last row: keeping rows from before the last row's window changes no count",
            _SM + "_track_still_periods", {124: "int(k[+1]) - window", 125: "int(k[-2]) - window"})
_equivalent("a step of SMALL_CHUNK rows or one more on the other path: the same flags (the small path's "
            "contract, held by tests/test_live_small_steps.py and test_mutants_slip.py)",
            _SM + "_thigh_fast", {3: "small = None", 4: "len(rows) < SMALL_CHUNK"})
_equivalent("a small path of SMALL_CHUNK rows or one more on the other path: the same decisions",
            _SM + "_track_still_periods", {10: "len(rows) < SMALL_CHUNK"})
_equivalent("a band test that sends every row to numpy (the reference path) gives numpy's flags",
            _SM + "_thigh_fast", {31: "1.000000001 * (sq + thr2)"})
_equivalent(_TIE + " (|d| exactly at the band)", _SM + "_thigh_fast", {29: "abs(d) >= 1e-9"})
_equivalent("d == 0 fails the band test just before, so it never reaches the sign test", _SM + "_thigh_fast",
            {34: "flags.append(d >= 0)"})
_equivalent("None and False are both false wherever the flags are read (and, if, any)", _SM + "_thigh_fast",
            {37: "flags.append(None)"})
_equivalent(_WARN, _SM + "_thigh_fast", {52: "invalid=None"})
_equivalent("einsum labels are case-sensitive letters: I and J are labels like i and j", _SM + "_thigh_fast",
            {49: '"IJ,IJ->I"', 64: '"IJ,IJ->I"'})
_equivalent("checked=True is the field's default", _SM + "_emit", {10: "self._swap, ))"})
_equivalent("Rows.slice(0, n) is the rows themselves, slice(pos, None) with pos > 0 takes the same rows, and "
            "history kept from before the run is cut away by the window's own indices", _SM + "_check",
            {9: "(pos) or True", 11: "rows.slice(pos, None)", 57: "r.slice(None, len(r))",
             40: "sub.slice(None, len(sub))"})
_equivalent("the rows of a chunk: fast[p][pos:None] is fast[p][pos:n]", _SM + "_check",
            {26: "fast, pos, None)"})
_equivalent("trimming the history again (a run start not remembered) gives the same rows, and history kept "
            "from before a new run is cut away by the window's own indices", _SM + "_check",
            {34: "run != self._hist_run", 94: 'self._hist_run = ""', 69: "self._hist_run = None"})
_equivalent("trimming the history again (a run start not remembered) gives the same rows", _SM + "__init__",
            {32: '_hist_run: int | None = ""'})
_equivalent("a run the history was trimmed to began in an earlier chunk, so the chunk's last row is after it",
            _SM + "_check", {38: "int(sub.k[-1]) > run"})
_equivalent("defensive guards that never act: a window is found at its last still row, inside the piece just "
            "kept (hist is never empty, it spans the window, the calibration is set); no still period starts "
            "inside or right after a run of still rows", _SM + "_slip_window",
            {2: "if not hist and self.calibration_", 7: "_after_walking(found[1])", 20: "a < 0 and b > len"})
_equivalent("frame_from_axes normalises the medio-lateral hint: (0, 0, 2) is (0, 0, 1)", _SM + "_slip_window",
            {93: "[0.0, 0.0, 2.0]"})
_equivalent("no rows: no fast sample either, so every thigh is skipped; the calibration is set before any "
            "check", _SM + "_walk_axis_check", {1: "if len(rows) == 0 and self"})
_equivalent(_F64 + " (rows of Python floats or float64 arrays)", _SM + "_walk_axis_check",
            {58: "dtype=None).reshape", 60: "np.asarray(x, ).reshape"})
_equivalent("numpy 2 reads a negative size as the unknown dimension", _SM + "_walk_axis_check",
            {62: "reshape(-2, 4)"})
_equivalent("an empty rest adds nothing to the next concatenation", _SM + "_walk_axis_check",
            {67: "(len(rest)) or True"})
_equivalent("a positive scale changes neither the eigenvectors nor the ratio of the eigenvalues",
            _SM + "_walk_axis_check", {73: "ww.T @ ww * len(ww)"})
_equivalent("(end time, side) is unique among a chunk's full windows (a thigh's windows end on different "
            "rows, the side tells the thighs apart): sorting by the whole tuple or its first three fields "
            "gives the same order and never compares the axis arrays", _SM + "_walk_axis_check",
            {87: "sorted(done, key=None)", 89: "sorted(done, )", 91: "key=lambda w: w[:3]"})
_equivalent(_TIE + " (an axis exactly perpendicular to the first reference window's)", _SM + "_walk_window",
            {11: "float(axis @ base[0]) <= 0"})


# -- processing/acc_bias.py ------------------------------------------------------------------------------
_AB = "hipback.processing.acc_bias.xǁAccBiasEstimatorǁ"  # numbering of commit 51045c7 (applied_at)
_equivalent("SensorStream converts t, acc and gyr to float64 arrays when it is built: asarray returns them "
            "as they are", _AB + "update",
            {6: "dtype=None", 8: "np.asarray(chunk.t, )", 21: "dtype=None", 23: "np.asarray(chunk.acc, )",
             31: "dtype=None", 33: "np.asarray(chunk.gyr, )"})
_equivalent("initial is a tuple of floats (its documented type): asarray gives float64 either way",
            _AB + "__init__", {74: "dtype=None", 76: "np.asarray(initial, ).copy()"})
_equivalent("times, the initial tuple and the updates' tuples are floats: numpy's default dtype is float64",
            _AB + "applied_at", {4: "dtype=None).reshape(-1)", 6: "np.asarray(t, ).reshape(-1)",
                                 11: "self.updates_]], dtype=None)", 13: "self.updates_]], )",
                                 25: "self.updates_], dtype=None)", 27: "self.updates_], )"})
_equivalent("numpy 2 reads a negative size as the unknown dimension", _AB + "applied_at", {8: "reshape(-2)"})
_equivalent("side='left' is searchsorted's default", _AB + "applied_at", {35: "np.isnan(t), -np.inf, t), )"})
_equivalent("initial is a tuple of 3 floats (its documented type): float64 either way, and reshape(None) "
            "keeps its shape (3,)", _AB + "_initial_vector",
            {6: "reshape(None)", 8: "dtype=None).reshape(3)", 10: "np.asarray(self.initial, ).reshape(3)"})
_equivalent("None and False are both false (the flags are only tested for truth)", _AB + "__init__",
            {51: "self._in_still = None", 65: "self._finished = None"})
_equivalent("None and False are both false (the flags are only tested for truth)", _AB + "_end_block",
            {55: "self._in_still = None"})
_equivalent("-inf and +inf both fail math.isfinite: no block before the first", _AB + "__init__",
            {50: "self._last_t = +math.inf"})
_equivalent("apply is only tested for truth, and t_next is read only when applying", _AB + "finish",
            {4: "apply=None", 5: "t_next=None"})
_equivalent("staying 'in a still period' after a moving block only fits the same bins again at the next "
            "moving block or at finish(): the same estimate, already applied or not trusted or too close "
            "to the applied one (the first still period, the only one whose sum is read, has ended already)",
            _AB + "_end_block", {56: "self._in_still = True"})
_equivalent("the running period's sum is read only at the end of the first still period, which starts from "
            "__init__'s [0, 0]", _AB + "_end_period", {9: "self._period = [np.zeros(3), 1]"})
_equivalent("initial value overwritten by the first Gauss-Newton step before it is read", _AB + "_fit",
            {18: "jac = None", 20: "np.zeros((len(m), 5))"})
_equivalent("rcond=None is lstsq's default (numpy 2)", _AB + "_fit", {44: "lstsq(jac, -r, )"})
_equivalent(_TIE + " (the largest Gauss-Newton step exactly 1e-7)", _AB + "_fit",
            {54: "np.abs(step).max() <= 1e-7"})
_equivalent("changing the sign of columns of the Jacobian (right-multiplying by an orthogonal diagonal D) "
            "keeps its singular values and the diagonal of (J^T J)^-1 = D (J^T J)^-1 D: the same condition "
            "and sigma", _AB + "_fit", {70: "[+d / nd[:, None]", 71: "+np.ones(len(m))])"})
_equivalent("compute_uv is only tested for truth", _AB + "_fit", {75: "compute_uv=None"})
_equivalent("singular values are >= 0, and a division by a zero numpy float gives inf (numpy only warns), "
            "the value of the else branch: whichever guard, the same condition number", _AB + "_fit",
            {81: "(sv[-1] > 0) or True", 87: "if sv[+1] > 0", 88: "if sv[-2] > 0", 89: "if sv[-1] >= 0"})


# -- processing/calibration.py ---------------------------------------------------------------------------
_CA = "hipback.processing.calibration.x_"
_equivalent("up_in_sensor gets quaternion rows (N, 4): the stacked (N,) components, axis 1 is the last axis",
            _CA + "up_in_sensor", {6: "axis=+1"})
_equivalent("assigning None to a float array stores NaN", _CA + "angular_velocity",
            {10: "(q_prev is None) and False"})
_equivalent("dw == 0 exactly: a half turn per sample, the same rotation about +axis or -axis",
            _CA + "angular_velocity", {46: "dw <= 0"})
_equivalent("from_matrix orthonormalises: the x and z columns both scaled by |z| give the same rotation (to "
            "rounding)", _CA + "frame_from_axes", {12: "z = z * np.linalg.norm(z)"})
_equivalent(_TIE, _CA + "prior_ml_axis", {9: "np.linalg.norm(n) <= 0.2"})
_equivalent(_TIE, _CA + "plane_axis", {18: "<= math.sin(min_spread_rad)"})
_BASIS = ("the lag covariance is a tensor: any basis of the horizontal plane gives the same axes (to "
          "rounding); the helper vector t only has to be off the vertical")
_WA = _CA + "walking_ml_axis"
_equivalent(_BASIS + " (t is normalised after its projection: (2, 0, 0) is (1, 0, 0))", _WA,
            {16: "np.array([2.0, 0.0, 0.0]) if", 25: "else np.array([0.0, 2.0, 0.0])"})
_equivalent(_BASIS + " (both choices are off the vertical at |up[0]| = 0.9)", _WA, {21: "abs(up[0]) <= 0.9"})
_equivalent(_BASIS + " (in the else branch |up[0]| >= 0.9: up is never along (1, 1, 0) or (0, 1, 1))", _WA,
            {24: "else np.array([1.0, 1.0, 0.0])", 26: "else np.array([0.0, 1.0, 1.0])"})
_equivalent("max(len, 1) and max(len, 2) differ for a single row only, refused as too short either way", _WA,
            {54: "max(len(w2), 2)"})
_equivalent(_TIE, _WA, {77: "corr[best] <= 0.25 * total"})
_equivalent("half a stride is at least round(0.35 * rate_hz) rows: 2 or more at any grid rate above 4 Hz, so "
            "the guard max(1, .) never acts", _WA, {87: "max(2, round(stride / 2))"})
_CS = _CA + "calibrate_sensor"
_equivalent(_TIE, _CS, {10: "spread >= math.radians(2.0)", 19: "up[0] <= 0", 108: "abs(fa.axis @ lat) > abs(",
                        127: "off >= s.misplacement_rad", 150: "ml_unc >= s.ml_disagreement_deg",
                        173: "fa.ratio <= 4.0", 180: "abs(score) < s.sign_margin",
                        246: "unc < s.ml_disagreement_deg", 247: "off < s.misplacement_rad"})
_equivalent("prior_ml_axis only tells the face 'anterior' from any other", _CS,
            {49: "prior_ml_axis(placement, up, None)", 87: "prior_ml_axis(placement, up, None)",
             91: '"XXlateralXX"', 92: '"LATERAL"'})
_equivalent("with the anterior face prior_ml_axis reads the placement only for the pelvis and upper lumbar "
            "sensors, which never take this branch", _CS, {94: 'prior_ml_axis(None, up, "anterior")'})
_equivalent("initial value overwritten before it is ever read (omega is used only when a functional axis "
            "was found from it)", _CS, {54: 'omega = ""'})
_equivalent("the face is the prior with the larger |dot| (at least cos 45 deg), so the dot is never 0", _CS,
            {136: "fa.axis @ prior > 0"})
_equivalent("sign_score does not use its rate argument", _CS, {161: "frame_from_axes(up, cand), None)"})
_equivalent("a score of exactly 0 is within the margin (>= 0), handled by the branch before", _CS,
            {187: "score <= 0"})
_equivalent("walking_ml_axis refuses fewer rows than two of the longest strides (4 s), so 2 or 3 rows give "
            "None at any grid rate above 1 Hz", _CS, {216: "len(q_motion) >= 2", 217: "len(q_motion) > 3"})
_equivalent("a walking axis exactly perpendicular to the prior is 90 deg off either way, beyond the "
            "misplacement limit", _CS, {234: "axis @ z_axis > 0"})
_equivalent("the quality starts at 1 and loses at most 0.2 + 0.1 + max(0.3, 0.1 + 0.15 + 0.15 + 0.3) = 1.0 "
            "(5.6e-17 after rounding): it never leaves [0, 1]", _CS,
            {278: "np.clip(quality, None, 1.0)", 279: "np.clip(quality, 0.0, None)",
             284: "np.clip(quality, 0.0, 2.0)"})
_equivalent(_TIE, _CA + "_ml_uncertainty", {9: "np.linalg.norm(pa) >= 0.5"})


# -- processing/calibration_search.py --------------------------------------------------------------------
_CQS = "hipback.processing.calibration_search.xǁCalibrationSearchǁ"
_equivalent("the counts are set to 0 when the window is set, before any is read (only the keys are read "
            "before)", _CQS + "__init__", {32: "{p: 1 for p"})
_equivalent("initial value overwritten when the window is set, before it is ever read", _CQS + "__init__",
            {36: "_motion_reach: dict[str, int] = None", 37: '_motion_counted_to: int | None = ""'})
_equivalent("None and False are both false", _CQS + "__init__",
            {45: "_marked_applied = None", 47: "_timeout_reported = None", 49: "_finished = None"})
_equivalent("update() and finish() set it before anything is appended to it", _CQS + "__init__",
            {51: "_out: list[CalibratedRows] = None"})
_equivalent("checked=True is the field's default", _CQS + "_rows", {10: "self.swap_, ))"})
_equivalent("checked=True is the field's default", _CQS + "_calibrate", {187: "self.swap_, ))"})
_equivalent("without thighs waited for, the search ends in the same call (the window's end is buffered when "
            "it is found), which sets CALIBRATED", _CQS + "_rows", {45: "(self._motion_count) or True"})
_equivalent("_try_marked returns at once without a mark or once it was applied", _CQS + "_rows",
            {51: "self._marked is not None or not self._marked_applied"})
_equivalent("the return value of _try_marked is never read", _CQS + "_try_marked",
            {6: "return True", 25: "return True", 32: "return True", 40: "return False"})
_ASSERT = "an assertion that holds either way (both parts hold at every call)"
_equivalent(_ASSERT, _CQS + "_init_motion_search", {1: "self._stand is not None or self._buffer_k0"})
_equivalent(_ASSERT, _CQS + "_calibrate",
            {2: "self._stand is not None or self._buffer"})
_equivalent("the count skips the rows before the window's end by their row number (an empty slice counts "
            "nothing)", _CQS + "_init_motion_search",
            {27: "self._stand[1] <= self._buffer_k0", 30: "allrows.slice(None, len(allrows))"})
_equivalent("b > 0: Rows.slice(b, None) takes the same rows as slice(b, len)", _CQS + "_init_motion_search",
            {31: "allrows.slice(b, None)"})
_equivalent("never called before the count starts; an empty chunk selects no rows either way",
            _CQS + "_count_motion", {2: "start is None and len(rows) == 0"})
_equivalent(_WARN, _CQS + "_count_motion", {14: "invalid=None"})
_equivalent(_TIE, _CQS + "_count_motion", {29: ">= self.settings.motion_gyr_rad_s"})
_equivalent("the window's rows are buffered when it is set (found on or after its end; a mark waits for "
            "them)", _CQS + "_motion_end_row", {15: "(last >= self._stand[1]) or True"})
_equivalent("each thigh's reach row follows one of its buffered rows, so last >= it",
            _CQS + "_motion_end_row", {24: "(last >= min(end, wait_end)) or True"})
_equivalent("n == limit keeps from the buffer's first row: nothing released, nothing reported",
            _CQS + "_check_timeout", {13: "n < limit"})
_equivalent("n > 0 exactly when rows are buffered at every call (the timeout releases a positive count, "
            "finish the whole buffer)", _CQS + "_release_uncalibrated",
            {1: "n <= 0 and not self._buffer", 2: "n < 0 or not self._buffer"})
_equivalent("the same rows (views rather than the object itself; n > 0)", _CQS + "_release_uncalibrated",
            {8: "allrows.slice(None, n)", 14: "allrows.slice(n, None)"})
_equivalent("no still run is longer than the rows", _CQS + "_short_standing", {12: "len(allrows) + 2)"})
_equivalent("one more search on no rows finds nothing and ends the loop", _CQS + "_short_standing",
            {22: "pos <= len(flags)"})
_equivalent("calibrate_sensor uses the movement of the thighs and the pelvis only", _CQS + "_calibrate",
            {40: '(p.startswith("thigh") or p == "pelvis") or True'})
_equivalent("once calibrated (state CALIBRATED) the buffer is never read again", _CQS + "_calibrate",
            {144: "self._buffer = None", 145: "self._buffer_n = None", 146: "self._buffer_n = 1"})
_equivalent("the search ends at or after the window's end, at least one row past the buffer's first: e >= 1",
            _CQS + "_calibrate", {155: "max(1, min(len(allrows)", 161: "if e >= 0:"})
_equivalent("the same rows (views rather than the object itself; e >= 1)", _CQS + "_calibrate",
            {172: "allrows.slice(None, e)", 189: "allrows.slice(e, None)"})


# -- processing/exercises/ (catalogue, signals, posture, engine, recognition, stream) -----------------------
_EXC = "hipback.processing.exercises.catalogue."
_equivalent("the last piece of a split is the same whatever the number of splits", _EXC + "x_build_catalogue",
            {31: 'fname.rsplit("/", )', 34: 'fname.rsplit("/", 2)'})
_equivalent("codec names are case-insensitive", _EXC + "x_shipped_files", {19: '"UTF-8"'})
_EXS = "hipback.processing.exercises.signals."
_equivalent("body-angle frames hold float64 arrays: the same numbers", _EXS + "x__get",
            {11: "dtype=None", 13: "np.asarray(v, )"})
_equivalent("np.errstate only silences warnings on NaN comparisons; the values are the same",
            _EXS + "x__pair", {15: "invalid=None"})
_equivalent("the other leg's name is only compared with 'right': any other value means the left leg",
            _EXS + "x__pair", {58: '"XXleftXX"', 59: '"LEFT"'})
_equivalent("x + pi and x - pi differ by 2 pi, which the modulo takes away", _EXS + "x_wrap",
            {3: "(np.asarray(x) - np.pi)"})
_equivalent("unreachable: every signal name is handled above (pragma: no cover)", _EXS + "x_signal",
            {162: "raise KeyError(None)"})
_EXP = "hipback.processing.exercises.posture.x_posture_time"
_equivalent("a bout without a label is compared with 'sitting': any other default is not sitting either",
            _EXP, {7: 'getattr(b, "label", None)', 13: 'getattr(b, "label", "XXXX")'})
_equivalent("an AngleSeries holds float64 arrays: the same numbers", _EXP,
            {19: "dtype=None", 21: "np.asarray(angles.t, )", 37: "dtype=None", 39: "lumbar_flexion, )",
             43: "dtype=None", 45: 'f"thigh_inclination_{side}"), )', 52: "dtype=None",
             54: 'f"hip_flexion_{side}"), )'})
_equivalent("np.errstate only silences warnings on NaN comparisons; the values are the same", _EXP,
            {75: "invalid=None", 108: "invalid=None"})
_EXE = "hipback.processing.exercises.engine."
_EXC_C = _EXE + "xǁExerciseCounterǁ"
_FS_KNOWN = "the sampling rate is always known there (the fallback rate is never used)"
_equivalent(_FS_KNOWN, _EXC_C + "current", {3: "or 101.0"})
_equivalent(_FS_KNOWN, _EXC_C + "_ref", {15: "or 101.0"})
_equivalent(_FS_KNOWN, _EXC_C + "_start_level", {12: "or 101.0"})
_equivalent(_FS_KNOWN, _EXC_C + "_close", {17: "or 101.0"})
_equivalent(_FS_KNOWN, _EXC_C + "_run", {8: "or 101.0"})
_equivalent("the live cue is only set during a movement and cleared when it closes", _EXC_C + "current",
            {32: "if (active) or True"})
_equivalent("every signal needs the pelvis: a rule is not available without it anyway", _EXC_C + "_checkable",
            {7: '"XXpelvisXX"', 8: '"PELVIS"'})
_equivalent("np.nanmean/np.nanmax of no finite sample is NaN too (with a warning)", _EXC_C + "_ref",
            {38: "or True else math.nan"})
_equivalent("np.nanmean/np.nanmax of no finite sample is NaN too (with a warning)", _EXC_C + "_close",
            {142: "or True else math.nan"})
_equivalent("before the level is measured the comparison with the NaN level is false either way",
            _EXC_C + "_level_tol", {8: "or True else 0.0"})
_equivalent("once the rate is known the first-chunk buffer is empty; after finish it is never read",
            _EXC_C + "finish", {4: "self._fs is None or self._first", 5: "self._fs is not None and",
                                6: "self._first = None"})
_equivalent("the closing call brings no samples: the rule arrays and an extra time stamp (after the last "
            "smoothed sample) are never read", _EXC_C + "finish",
            {10: "np.zeros(0), None, final=True", 17: "np.zeros(1), np.zeros(0)", 21: "np.zeros(1) for _"})
_equivalent("the rule arrays are as long as the rules (zip strict or not); v[i:i+2][0] is v[i]",
            _EXC_C + "_live",
            {7: "strict=None", 10: "vals, )", 11: "strict=False", 27: "v[i : i + 2]"})
_equivalent("the rule arrays are as long as the rules: zip strict or not pairs them the same",
            _EXC_C + "_close",
            {114: "strict=None", 117: "vals, )", 118: "strict=False"})
_equivalent(_WARN, _EXC_C + "_close", {133: "invalid=None"})
_equivalent(_WARN, _EXC_C + "_run", {70: "invalid=None"})
_equivalent(_TIE, _EXC_C + "_close", {45: "seg > base", 50: "speed < self", 88: "p[w0:w1] - base > ex",
                                      92: "p[w0:w1] > ex", 155: "ref_peak > ex"})
_equivalent(_TIE, _EXC_C + "_run", {82: "level) > need", 83: "run_min < level", 87: "seg - run_min > need"})
_equivalent("without a still run the bounds are (0, 0): he - hs is 0 either way", _EXC_C + "_close",
            {58: "(he > hs) or True", 61: "he >= hs"})
_equivalent("the sample count is only tested for zero (any chunk makes it non-zero)", _EXC_C + "_ingest",
            {10: "self._n = len(t)", 11: "self._n -= len(t)"})
_equivalent("the window is odd (2 h + 1): w > 2 is w > 1, and for w = 1 the tail raw[len(raw):] is empty",
            _EXC_C + "_ingest", {42: "(w > 1) or True", 46: "w >= 1", 47: "w > 2"})
_equivalent("concatenating a single array gives the same array", _EXC_C + "_arrays",
            {1: "len(self._t) >= 1", 8: "len(self._p) >= 1"})
_equivalent("unreachable: the buffers are only read after samples came", _EXC_C + "_arrays",
            {13: "np.zeros(None), np.zeros(0)", 14: "return np.zeros(1), np.zeros(0)"})
_equivalent("without a still run the hold bounds are never used (hold time 0: no hold)",
            _EXE + "x__longest_run",
            {2: "return 1, 0"})
_equivalent(_F64, _EXE + "x__longest_run", {8: "astype(None)"})
_equivalent("a lower search bound further back only adds samples before the first new one, which are masked "
            "(each trailing window starts within the bound either way)", _EXC_C + "_run",
            {26: "max(i - win + 1, self._rest_from", 27: "max(0, self._rest_from - self._n0)",
             30: "i - win - 1"})
_equivalent("the first sample searched has only itself as minimum: never a rise, masked or not",
            _EXC_C + "_run",
            {88: "= None", 93: "max(1, i - lo)"})
_equivalent("returning instead of breaking only skips trimming the buffers: the same results, more memory",
            _EXC_C + "_run", {100: "return", 205: "return"})
_equivalent("unreachable: the buffers are only read after samples came", _EXC_C + "_arrays",
            {15: "np.zeros(0), np.zeros(None)", 16: "np.zeros(0), np.zeros(1)", 17: "np.zeros(None) for _",
             18: "np.zeros(1) for _", 21: "if (self._p) or True", 23: "else np.zeros(None)",
             24: "else np.zeros(1)"})
_equivalent("a missing sample ends the movement there, so the running maximum at and after it is never used",
            _EXC_C + "_run", {155: "np.where(None, -np.inf, seg)", 162: "+np.inf, seg"})
_equivalent(_WARN, _EXC_C + "_run", {126: "invalid=None", 184: "invalid=None"})
_equivalent("the loop only runs with samples left: the running maximum is never empty",
            _EXC_C + "_run", {198: "(len(run_max)) or True"})
_equivalent("before the level is measured the comparison with the NaN level is false either way",
            _EXC_C + "_level_tol", {10: "else 1.0"})
_equivalent("a prescription of 0 s gives a limit of minus the tolerance, which no hold time is below",
            _EXC_C + "_close",
            {173: "self._hold_s >= 0"})
_equivalent("for a rep the window is the movement itself: t[w0] is tt[0] and t[w1 - 1] is tt[-1]",
            _EXC_C + "_close", {247: "if (is_hold) or True", 252: "if (is_hold) or True"})
_EXR = "hipback.processing.exercises.recognition."
_equivalent("the loop's side is already None for an exercise done with both legs", _EXR + "x__candidates",
            {86: "(ex.sides == \"both\") and False", 89: '"XXbothXX"', 90: '"BOTH"',
             117: "(ex.sides == \"both\") and False", 120: '"XXbothXX"', 121: '"BOTH"'})
_equivalent("the time observed lies within the window (a peak or a hold's middle): searchsorted gives "
            "1 .. n - 1 there, and only the first sample of the slice is read", _EXR + "x__observed",
            {4: "np.clip(np.searchsorted(frame.t, t), None,", 5: "0, None))", 13: "t), 1, len(frame) - 1)",
             14: "len(frame) + 1", 18: "frame.slice(i, None)", 22: "frame.slice(i, i + 2)"})
_equivalent("taking every sample is what slicing with a step of 1 does", _EXR + "x_recognise",
            {13: "decimate >= 1"})
_equivalent("stacking 1-D arrays: axis=1 is axis=-1", _EXR + "x__up", {25: "axis=+1"})
_equivalent("stacking 1-D arrays: axis=1 is axis=-1", _EXR + "x_episodes", {29: "axis=+1"})
_equivalent("searchsorted is never negative, and only the first row of the slice is read",
            _EXR + "x__class_at", {4: "np.clip(np.searchsorted(frame.t, t), None,", 22: "[i : i + 2]"})
_equivalent("the window bounds are within 0 .. n already (lo < n, hi >= 1); a first pass at i = 0 compares "
            "the first sample with itself", _EXR + "x_episodes",
            {66: "k // 2, 0, None)", 77: "+ 1, None, len(cls))", 88: "+ 1, 1, len(cls))",
             101: "range(len(sm) + 1)"})
_equivalent(_WARN + " (and divisions by zero time steps)", _EXR + "x__rest_starts",
            {10: "invalid=None", 11: "divide=None", 12: "np.errstate(divide=", 13: 'invalid="ignore", )'})
_equivalent(_TIE, _EXR + "x__rest_starts", {28: "<= still_rad_s"})
_equivalent(_F64, _EXR + "x__rest_starts", {33: "astype(None)"})
_equivalent("a run stops at most at the last step (n - 1): the larger bound changes nothing",
            _EXR + "x__rest_starts", {49: "len(frame) + 1"})
_equivalent("None is false like False", _EXR + "x_recognise", {129: "changed = None"})
_equivalent("a chosen candidate overlaps itself, so it is skipped by the overlap test anyway",
            _EXR + "x_recognise", {142: "c[2] is o[1]", 144: "c[1] is o[2]"})
_EXT = "hipback.processing.exercises.stream."
_EXB = _EXT + "xǁExerciseBlockǁ"
_EXG = _EXT + "xǁProgrammeRunnerǁ"
_equivalent("grid indices divided by the rate give the same float64 times", _EXT + "x_segment_frame",
            {29: "dtype=None", 31: "np.asarray(rows_k, )"})
_equivalent("the rotation axis is normalised: [0, 2, 0] is the Y axis", _EXT + "x__ry",
            {6: "[0.0, 2.0, 0.0]"})
_equivalent("the rotation axis is normalised: [0, 0, 2] is the Z axis", _EXB + "_set_offsets",
            {41: "[0.0, 0.0, 2.0]"})
_equivalent("slicing to None is slicing to the end", _EXB + "_realign_loop", {15: "chunk.slice(start, None)"})
_equivalent("slicing to None is slicing to the end", _EXG + "update", {31: 'side="right")), None)'})
_equivalent("the history ends at the run's last sample when the window is cut: slicing to the end is the "
            "same",
            _EXB + "_window", {11: "frame.slice(a, None)"})
_equivalent("out is still empty there: = and += agree", _EXB + "finish", {5: "out = self._release()"})
_equivalent("after finish the counter refuses samples with the same error, and a second finish finds "
            "nothing new", _EXB + "finish", {7: "self._finished = None", 8: "self._finished = False"})
_equivalent("a counter made at finish never gets a sample: its start level is never used", _EXB + "finish",
            {10: "_make_counter(None)", 11: "_make_counter(True)"})
_equivalent("None is false like False", _EXB + "_find_run", {11: "self._run_used = None"})
_equivalent(_TIE, _EXB + "_find_run", {19: "> self.align_s - 1e-9"})
_equivalent("a longer memory of recent samples only costs memory: the next item gets the same samples",
            _EXG + "_remember", {5: "self.block.get(None, 60.0)", 9: '"XXmax_wait_sXX"', 10: '"MAX_WAIT_S"',
                                 11: "61.0)) + 5.0", 12: "60.0)) + 6.0",
                                 19: "len(self._recent) > 2"})
_equivalent(_TIE, _EXG + "_remember", {23: "<= t_end - keep"})
_equivalent("the finished flag is only tested for truth", _EXG + "__init__", {24: "self._finished = None"})
_equivalent("the block is never read after finish", _EXG + "finish", {12: 'self._block = ""'})
_equivalent("results and events are made for the current item: counted(None) counts the same item",
            _EXG + "_results", {7: "self.counted(None)"})
_equivalent("results and events are made for the current item: counted(None) counts the same item",
            _EXG + "_event", {38: "counted=self.counted(None)"})
_equivalent("quaternions are float64 arrays: the same numbers", _EXT + "x__yaw_correction",
            {3: "dtype=None", 5: "np.asarray(q, ).T"})
_equivalent("the up direction's Y component is only checked for being finite, never used",
            _EXT + "x__yaw_correction", {17: "3 * (y * z + w * x)", 18: "2 * (y * z - w * x)"})
_equivalent("stacking 1-D arrays: axis=1 is axis=-1", _EXT + "x__yaw_correction", {28: "axis=+1"})
_equivalent(_TIE, _EXT + "x__yaw_correction",
            {45: "<= min_observability or", 52: "[2]) <= min_observability"})
_equivalent("set before it is first read: the first sample is never still (no previous one), which resets "
            "the run; the facing mask and the skip time are set in the same call that reads them",
            _EXB + "__init__", {38: '_run_t: float | None = ""', 40: "self._facing = None",
                                42: "np.zeros(0, dtype=None)", 44: "np.zeros(0, )",
                                45: "np.zeros(1, dtype=bool)",
                                50: "self._skip_before = None", 51: "self._skip_before = +math.inf",
                                52: "self._run_used = None", 53: "self._run_used = True",
                                58: "self._finished = None"})
_equivalent("slicing from None is slicing from 0, to None is to the end", _EXB + "update",
            {34: "chunk.slice(f, None)", 46: "chunk.slice(None, j + 1)", 59: "chunk.slice(j + 1, None)",
             89: "chunk.slice(j + 1, None)"})
_equivalent("an all-false mask of zeros is read only for its truth values", _EXB + "_good",
            {8: "len(chunk), dtype=None)", 10: "np.zeros(len(chunk), )"})
_equivalent(_WARN, _EXB + "_good", {43: "invalid=None"})
_equivalent(_TIE, _EXB + "_good", {57: "< self.posture_tolerance_rad"})
_equivalent("the hips test does not use the up direction it is given", _EXB + "_good",
            {62: "_hips_in_posture(chunk, None)"})
_equivalent(_WARN + " (and divisions by zero time steps)", _EXB + "_still",
            {23: "invalid=None", 24: "divide=None", 25: "np.errstate(divide=", 26: 'invalid="ignore", )'})
_equivalent(_TIE, _EXB + "_still", {38: "<= self.still_rad_s"})
_equivalent(_WARN, _EXB + "_hips_in_posture", {21: "invalid=None"})
_equivalent("a longer history only costs memory: the alignment window is cut from it by time",
            _EXB + "_feed", {3: "(len(frame)) and False", 10: "self.align_s - 2.0",
                             14: "len(self._hist) > 2",
                             18: "float(self._hist[1].t[0]) < keep"})
_equivalent("after the alignment the buffer is never used again", _EXB + "_release",
            {3: "self._buffer = None"})
_equivalent("adduction and rotation are zero in the posture reference: the side's sign changes nothing",
            _EXB + "_set_offsets", {92: "posture_reference(qp, q, None, nominal)"})
_equivalent("the rotation axis is normalised: [0, 0, 2] is the Z axis", _EXB + "_set_offsets",
            {105: "[0.0, 0.0, 2.0], sagittal"})

# -- ingest/influx/lineprotocol.py ------------------------------------------------------------------------
_LP = "hipback.ingest.influx.lineprotocol."
_equivalent("a cache: a tag set not stored is escaped again, to the same text", _LP + "x__prefix",
            {11: "type(None) is str"})
_equivalent("a fast path: format_field_value writes a float as repr() when finite and drops it otherwise, "
            "the same text", _LP + "x_encode_lines", {12: "type(None) is float"})


# -- ingest/sync.py ----------------------------------------------------------------------------------------
_SY = "hipback.ingest.sync."
_equivalent("the flag is only tested for truth: None is false like False", _SY + "xǁSyncWorkerǁ__init__",
            {20: "self._ensured = None"})
_equivalent("send_lines' default precision is ns", _SY + "xǁSyncWorkerǁsync_once",
            {15: "send_lines([line for _, line in batch], )"})
_equivalent("logging applies %-formatting only when arguments are given: the message is str(exc) either way",
            _SY + "xǁSyncWorkerǁrun", {14: "log.warning(exc)"})


# -- processing/pipeline.py -----------------------------------------------------------------------------
_PL = "hipback.processing.pipeline."
_PLS = _PL + "xǁSessionProcessorǁ"
_equivalent("the default channel template's placement, kind and rates are replaced by each sensor's own "
            "(_rebuild sets placement, kind, rate_hz and grid_rate_hz); its constructor accepts any of them",
            _PLS + "__init__",
            {30: "None,", 31: "None,", 41: "-grid_rate_hz=r,", 46: '"XXpelvisXX"', 47: '"PELVIS"',
             48: '"XXrawXX"', 49: '"RAW"', 50: "101.0,"})
_equivalent("the default template's grid rate is replaced by the session's (_rebuild sets rate_hz)",
            _PLS + "__init__", {81: "-rate_hz=r,", 104: "-rate_hz=r,", 127: "-rate_hz=r,"})
_equivalent("the flag is only tested for truth: None is false like False", _PLS + "__init__",
            {219: "self._finished = None"})
_equivalent("one queued chunk concatenated alone is a copy with the same values (and the same None "
            "arrays, sequence numbers, device and meta)", _PLS + "flush", {10: "(len(parts) == 1) and False"})
_equivalent("AngleSeries.concat([]) is AngleSeries.empty(): the same empty series", _PLS + "poll",
            {17: "(self._new_angles) or True"})
_equivalent("with as many messages as already seen, the new ones are an empty slice",
            _PLS + "_collect_messages", {3: ">= n:"})
_equivalent("_collect treats every kind other than stride and hold as activity", _PLS + "finish",
            {21: "self.activity_classifier.finish(), None)", 24: '"XXactivityXX"', 25: '"ACTIVITY"'})
_equivalent("_collect treats every kind other than stride and hold as activity", _PLS + "_emit",
            {100: "update(ang), None)", 104: '"XXactivityXX"', 105: '"ACTIVITY"'})
_equivalent("SensorStream converts the joined arrays to float64, where numpy reads None as NaN",
            _PL + "x__concat_streams", {14: "np.full((len(s.t), width), None)"})
_equivalent("one array per chunk: strict or not, zip pairs them the same", _PL + "x__concat_streams",
            {20: "strict=None", 23: "zip(parts, arrs, )", 24: "strict=False"})


# -- ingest/store.py (whole module) ---
_ST = "hipback.ingest.store."
_STL = _ST + "xǁLocalStoreǁ"
_SQL_CASE = ("SQL keywords, table and column names are case-insensitive (the statement holds no string "
             "literal)")
_equivalent(_SQL_CASE, _STL + "latest_open_session",
            {7: "select id from sessions", 8: "SELECT ID FROM SESSIONS", 10: "order by start_utc desc",
             11: "ORDER BY START_UTC DESC"})
_equivalent(_SQL_CASE, _STL + "close_session",
            {12: "select max(s.t) from samples", 13: "SELECT MAX(S.T) FROM SAMPLES", 15: "where x.session_id",
             16: "WHERE X.SESSION_ID", 29: "update sessions set end_utc", 30: "UPDATE SESSIONS SET END_UTC"})
_equivalent(_SQL_CASE, _STL + "sensors",
            {25: "select placement, kind", 26: "SELECT PLACEMENT, KIND", 28: "(select count(*) from samples",
             29: "(SELECT COUNT(*) FROM SAMPLES", 31: "from sensors where session_id",
             32: "FROM SENSORS WHERE SESSION_ID"})
_equivalent(_SQL_CASE, _STL + "add_gap",
            {10: "insert into gaps", 11: "INSERT INTO GAPS (SESSION_ID", 13: "values (?, ?, ?, ?, ?, ?)"})
_equivalent(_SQL_CASE, _STL + "add_event",
            {10: "insert into events", 11: "INSERT INTO EVENTS (SESSION_ID"})
_equivalent(_SQL_CASE, _STL + "events",
            {3: "select t, kind, payload from events", 4: "SELECT T, KIND, PAYLOAD FROM EVENTS",
             10: '" and kind = ?"', 11: '" AND KIND = ?"', 30: '" order by t, id"', 31: '" ORDER BY T, ID"'})
_equivalent(_SQL_CASE, _STL + "put_results",
            {13: "delete from results", 14: "DELETE FROM RESULTS WHERE SESSION_ID", 20: "insert into results",
             21: "INSERT INTO RESULTS (SESSION_ID"})
_equivalent(_SQL_CASE, _STL + "get_results",
            {8: "select row from results", 9: "SELECT ROW FROM RESULTS"})
_equivalent(_SQL_CASE, _STL + "outbox_requeue",
            {9: "update outbox set state = 0", 10: "UPDATE OUTBOX SET STATE = 0",
             18: "update outbox set state = 0", 19: "UPDATE OUTBOX SET STATE = 0"})
_equivalent(_SQL_CASE, _STL + "outbox_set_aside_lines",
            {22: "select id, session_id, line", 23: "SELECT ID, SESSION_ID, LINE",
             25: "where state = 2 order by", 26: "WHERE STATE = 2 ORDER BY ID DESC"})
_equivalent(_SQL_CASE, _STL + "_outbox_set",
            {7: "update outbox set state = ?", 8: "UPDATE OUTBOX SET STATE = ?"})
_equivalent("dead code: a store's version is 0, 1 (in MIGRATIONS) or SCHEMA_VERSION, a newer one is refused "
            "while it is read, so this refusal is never reached", _STL + "_open_readonly",
            {30: "StoreVersionError(None,", 31: "StoreVersionError(self.path, None)",
             32: "raise StoreVersionError(f\"has schema", 33: "StoreVersionError(self.path, )",
             34: '"XXread.XX"', 35: '"READ."'})
_equivalent(_SQL_CASE, _STL + "open_session",
            {14: "select patient_id, end_utc, meta from sessions", 15: "SELECT PATIENT_ID, END_UTC, META",
             31: "update sessions set meta", 32: "UPDATE SESSIONS SET META", 52: "insert into sessions",
             53: "INSERT INTO SESSIONS (ID"})
_equivalent(_SQL_CASE, _STL + "sessions",
            {3: "select id, patient_id", 4: "SELECT ID, PATIENT_ID", 6: "(select count(*) from samples",
             7: "(SELECT COUNT(*) FROM SAMPLES", 9: "where x.session_id = sessions.id",
             10: "WHERE X.SESSION_ID = SESSIONS.ID", 12: "(select count(*) from outbox",
             13: "(SELECT COUNT(*) FROM OUTBOX", 15: '"from sessions"', 16: '"FROM SESSIONS"',
             22: '" where patient_id = ?"', 23: '" WHERE PATIENT_ID = ?"', 28: '" order by start_utc desc',
             29: '" ORDER BY START_UTC DESC'})
_equivalent(_SQL_CASE, _STL + "_require_session",
            {6: "select 1 from sessions", 7: "SELECT 1 FROM SESSIONS"})
_equivalent(_SQL_CASE, _STL + "add_sensor",
            {10: "insert into sensors", 11: "INSERT INTO SENSORS (SESSION_ID", 13: "on conflict (session_id",
             14: "ON CONFLICT (SESSION_ID, PLACEMENT)", 16: "KIND = EXCLUDED.KIND",
             18: "META = EXCLUDED.META"})
_equivalent(_SQL_CASE, _STL + "_sensor_id",
            {18: "select id from sensors", 19: "SELECT ID FROM SENSORS"})
_equivalent(_SQL_CASE, _STL + "add_samples",
            {118: "insert or ignore into samples", 119: "INSERT OR IGNORE INTO SAMPLES (SENSOR",
             121: "mz) values (?", 122: "GX, GY, GZ, MX, MY, MZ)"})
_equivalent(_SQL_CASE, _STL + "gaps",
            {21: "select placement, t_start", 22: "SELECT PLACEMENT, T_START",
             24: "where session_id = ? order by", 25: "WHERE SESSION_ID = ? ORDER BY T_START"})
_equivalent(_SQL_CASE, _STL + "outbox_add",
            {40: "insert into outbox", 41: "INSERT INTO OUTBOX (SESSION_ID"})
_equivalent(_SQL_CASE, _STL + "outbox_pending",
            {8: "select id, line from outbox", 9: "SELECT ID, LINE FROM OUTBOX",
             17: "select id, line from outbox", 18: "SELECT ID, LINE FROM OUTBOX",
             20: '"order by id limit ?"', 21: '"ORDER BY ID LIMIT ?"'})
_equivalent("a missing error code is None or 0: both become 0", _ST + "x__sqlite_code",
            {6: '"sqlite_errorcode", None)'})
_equivalent("the sensor-id cache only saves a query: without it the id is read from the store, the same",
            _STL + "_sensor_id", {9: "sid = None", 10: "cache.get(None)"})
_equivalent("numpy takes any negative size as the one to infer, like -1", _STL + "add_samples",
            {8: "reshape(-2)", 34: "reshape(-2)"})
_equivalent("the arrays are numeric (times, readings): float32 or integer values are widened to the same "
            "float64 when the columns are joined, and SQLite's REAL columns store them alike",
            _STL + "add_samples", {4: "dtype=None", 6: "np.asarray(t, )", 70: "dtype=None",
                                   72: "np.asarray(arr, )", 94: "dtype=None",
                                   96: "np.asarray(obj_cols[2], )"})
_equivalent("a missing vector is bound as NULL either way: NaN and None both become NULL",
            _STL + "add_samples", {64: "np.full((n, width[name]), None)"})
_equivalent("the three lists have n items each (checked above): strict or not, zip pairs them alike",
            _STL + "add_samples", {128: "strict=None", 132: "dt_list, )))", 133: "strict=False"})
_equivalent("encode_lines' default precision is ns", _STL + "outbox_add", {12: "encode_lines([item], )"})
_equivalent("a single sample has no step: the fallback step of 1 s gives the same 1 Hz as the fallback rate",
            _ST + "x__rate", {22: "else 1.0"})
_equivalent(_SQL_CASE, _STL + "load_recording",
            {10: "select id, placement, kind", 11: "SELECT ID, PLACEMENT, KIND",
             13: "where session_id = ? order", 14: "WHERE SESSION_ID = ? ORDER BY ID"})
_equivalent("the chunk size of the read only bounds memory: the rows and their order are the same",
            _STL + "load_recording", {30: "fetchmany(20001)"})
_equivalent("numpy reads the sort kind case-insensitively", _STL + "load_recording", {60: 'kind="STABLE"'})
_equivalent("without any stream the span is inf - inf = NaN, which no comparison passes, whatever is covered",
            _STL + "load_recording", {131: "default=1.0)"})
_equivalent("a session start equal to the first sample's time gives the same time 0", _STL + "load_recording",
            {163: "start < t_ref"})
_equivalent("no invalid operation occurs there (absolute values, squares and comparisons of NaN or inf raise "
            "no invalid flag): the invalid setting is never used", _ST + "x__plausible_rows",
            {6: "invalid=None", 8: "np.errstate(over="})
_equivalent("every device's gyroscope limit (rad/s) is below its accelerometer limit (m/s^2): a rotation "
            "rate above the acceleration limit is already beyond its own", _ST + "x__plausible_rows",
            {23: "data[:, 6:10]"})
_equivalent("the rows have 15 columns: [12:16] is [12:15]", _ST + "x__plausible_rows", {47: "data[:, 12:16]"})
_equivalent("|norm - 1| is exact near 1 (Sterbenz) and neither 1.1 nor 0.9 as 1 + or - the double 0.1 is a "
            "double: the tie at the tolerance cannot occur", _ST + "x__plausible_rows", {65: ">= QUAT_NORM"})
_equivalent("the decoding error only tells the methods to report a damaged store in their own sentence: its "
            "message, document text and position are never shown", _ST + "x__loads_meta",
            {4: "JSONDecodeError(None,", 10: '"XXnot a JSON objectXX"', 11: '"not a json object"',
             12: '"NOT A JSON OBJECT"', 13: "str(None), 0)", 14: "str(text), 1)"})
_equivalent("the decoding error only tells the methods to report a damaged store in their own sentence: its "
            "message, document text and position are never shown", _ST + "x__loads",
            {2: "JSONDecodeError(None,", 8: '"XXnot JSON textXX"', 9: '"not json text"',
             10: '"NOT JSON TEXT"', 11: '"XXXX", 0)', 12: '"", 1)'})
_equivalent(_SQL_CASE, _STL + "session",
            {7: "select id, patient_id, start_utc", 8: "SELECT ID, PATIENT_ID, START_UTC"})
_equivalent(_SQL_CASE, _STL + "integrity_check",
            {4: '"pragma integrity_check"', 5: '"PRAGMA INTEGRITY_CHECK"'})
_equivalent(_SQL_CASE, _STL + "sample_count",
            {3: "select count(*) from samples", 4: "SELECT COUNT(*) FROM SAMPLES",
             10: '" and x.placement = ?"', 11: '" AND X.PLACEMENT = ?"'})
_equivalent(_SQL_CASE, _STL + "outbox_stats",
            {3: '"select state, count(*) from outbox"', 4: '"SELECT STATE, COUNT(*) FROM OUTBOX"',
             10: '" where session_id = ?"', 11: '" WHERE SESSION_ID = ?"', 25: '" group by state"',
             26: '" GROUP BY STATE"'})
_equivalent("a file without group or other bits keeps its mode under chmod(mode & 0o700): testing every "
            "file changes no mode", _ST + "x__private", {5: "st.st_mode | 0o077"})
_equivalent(_SQL_CASE, _STL + "_open_for_writing",
            {59: '"pragma journal_mode = wal"', 60: '"PRAGMA JOURNAL_MODE = WAL"', 64: '"begin immediate"'})
_equivalent("the folder was just found missing: exist_ok only matters if another process makes it meanwhile",
            _STL + "_open_for_writing", {6: "exist_ok=None", 9: "parents=True, )", 12: "exist_ok=False"})
_equivalent("a new file made 0o601 is tightened to 0o600 by _private right after, before SQLite makes its "
            "-wal and -shm files", _STL + "_open_for_writing", {26: "os.O_EXCL, 385)"})
_equivalent("WAL mode is persistent in the file (set just after): later connections are in WAL mode whether "
            "they ask again or not", _STL + "_open_for_writing",
            {55: "self._verified = None", 56: "self._verified = False"})
_equivalent(_SQL_CASE + "; 'schema_version' is lowercase already", _STL + "_open_for_writing",
            {84: "insert into meta (key, value) values ('schema_version'", 87: '"do update set value',
             88: '"DO UPDATE SET VALUE = EXCLUDED.VALUE"', 93: '"rollback"', 96: '"commit"'})
_equivalent("version 1 is the only one migrated and SCHEMA_VERSION is 2: a step of 2 ends the loop the same",
            _STL + "_open_for_writing", {77: "version += 2"})
_equivalent("a failed opening closes the connection right after (the constructor's except), which discards "
            "the open transaction as ROLLBACK would; a working ROLLBACK raises nothing to suppress",
            _STL + "_open_for_writing", {90: "contextlib.suppress(None)", 92: '"XXROLLBACKXX"'})
_equivalent("the header checks read bytes 16..95 and the length up to 100: reading the whole file, or 101 "
            "bytes, gives the same bytes and the same length test", _ST + "x__check_file",
            {8: "fh.read(None)", 9: "fh.read(101)"})
_equivalent("int.from_bytes reads big-endian by default (Python 3.11+)", _ST + "x__check_file",
            {40: "int.from_bytes(head[16:18], )", 55: "int.from_bytes(head[28:32], )"})
_equivalent("at and above 512, p & (p - 2) is zero exactly when p & (p - 1) is (powers of two)",
            _ST + "x__check_file", {70: "page_size & (page_size - 2)"})
_equivalent(_SQL_CASE + "; the literals 'table' and 'schema_version' are lowercase already",
            _STL + "_read_version",
            {5: '"pragma application_id"', 6: '"PRAGMA APPLICATION_ID"', 12: '"pragma user_version"',
             13: '"PRAGMA USER_VERSION"', 19: "select name from sqlite_master where type = 'table'",
             45: "select value from meta where key = 'schema_version'"})
_equivalent("the synchronous setting is upper-cased before use, and SQLite reads it in any case",
            _STL + "__init__", {2: 'synchronous: str = "full"', 21: "synchronous.lower()"})
_equivalent("the flags are only tested for truth: None is false like False", _STL + "__init__",
            {29: "self._closed = None", 31: "self._immutable = None", 33: "self._verified = None"})
_equivalent("the connection's timeout is overridden by PRAGMA busy_timeout right after", _STL + "_con",
            {30: ")", 33: "self._busy_timeout_ms * 1000)", 34: "self._busy_timeout_ms / 1001)",
             47: ")", 49: "self._busy_timeout_ms * 1000)", 50: "self._busy_timeout_ms / 1001)"})
_equivalent("every write runs inside an explicit BEGIN IMMEDIATE or SAVEPOINT (and read-only connections "
            "never write), so the sqlite3 module's implicit transactions never start", _STL + "_con",
            {28: "connect(uri, uri=True, check_same_thread=False,",
             45: "connect(self.path, check_same_thread=False,"})
_equivalent(_SQL_CASE, _STL + "_con",
            {38: '"pragma query_only = on"', 39: '"PRAGMA QUERY_ONLY = ON"',
             54: '"pragma journal_mode = wal"', 55: '"PRAGMA JOURNAL_MODE = WAL"',
             59: '"pragma foreign_keys = on"', 60: '"PRAGMA FOREIGN_KEYS = ON"'})


# -- ingest/files/table.py -------------------------------------------------------------------------------
_TB = "hipback.ingest.files.table."
_OFFSETS = ("line offsets held as float64 instead of int64 are exact below 2^53 and only read through int(), "
            "the same lines (a file is at most MAX_FILE_BYTES = 4 GiB)")
_equivalent(_OFFSETS, _TB + "xǁLinesǁof",
            {20: "np.array(found, dtype=None)", 22: "np.array(found, )", 26: "np.zeros(1, dtype=None)",
             28: "np.zeros(1, )", 35: "[len(text)], dtype=None)", 37: "[len(text)], )"})
_equivalent(_OFFSETS, _TB + "x__newlines", {22: "astype(None, copy=False)"})
_equivalent("astype's copy only decides whether the same offsets are copied", _TB + "x__newlines",
            {23: "copy=None)", 25: "astype(np.int64, )", 27: "copy=True)"})
_equivalent("read_text refuses an empty or blank file before looking for newlines: the data always has a "
            "byte, so there is always a block", _TB + "x__newlines",
            {21: "(parts) or True", 28: "np.zeros(None, ", 29: "np.zeros(0, dtype=None)",
             30: "np.zeros(dtype=", 31: "np.zeros(0, )", 32: "np.zeros(1, dtype=np.int64)"})
_equivalent("a fast path: a slice of step 1 taken line by line gives the same strings",
            _TB + "xǁLinesǁ__getitem__", {3: "(step == 1) and False"})
_equivalent("the newline offsets are found again by Lines.of, the same", _TB + "x_read_text",
            {61: "nl = None", 79: "Lines.of(text, ends, None)", 82: "Lines.of(text, ends, )"})
_equivalent("codec names are case-insensitive and UTF-8 is bytes.decode's default", _TB + "x_read_text",
            {66: 'decode("ASCII")', 86: 'data.decode(errors="replace")', 89: 'decode("UTF-8", '})
_equivalent("counting from offset None is counting from 0", _TB + "x_read_text", {44: ", None, nul) + 1"})
_equivalent("the select timeout only sets how often a pending Ctrl-C is handled while a pipe is silent; the "
            "bytes read are the same", _TB + "x__read_bounded",
            {37: "[], [], None)", 41: "[], [], )", 42: "[], [], 1.1)"})
_equivalent("the size of one read from a pipe: the same bytes, in other pieces", _TB + "x__read_bounded",
            {51: "os.read(fd, 2 << 24)", 52: "os.read(fd, 1 << 25)"})
_equivalent("the fallback for a TextFile whose lines are not Lines: Lines sliced by step 1 gives its block, "
            "the same strings", _TB + "x_parse_rows", {8: "(isinstance(lines, Lines)) and False"})
_equivalent("when the header is the last line there is no row either way: the same refusal (no data rows)",
            _TB + "x_parse_rows", {15: "n_lines >= start"})
_equivalent("cut and first_row and drop_last are only tested for truth: None is false like 0 and False",
            _TB + "x_parse_rows", {36: "cut = None", 62: "first_row = None", 146: "drop_last = None"})
_equivalent("numpy's default integer dtype is int64 (the row numbers; the count only pre-sizes the array)",
            _TB + "x_parse_rows", {81: "np.asarray(keep, dtype=None)", 83: "np.asarray(keep, )",
                                   92: "dtype=np.int64, )"})
_equivalent("end is not read after the field-count pass (the range of its loop was made before)",
            _TB + "x_parse_rows", {107: "end = None", 108: "end = n_lines + 1", 109: "end = n_lines - 2"})
_equivalent("the columns' order only orders the conversion: the reported error is chosen by (row, field)",
            _TB + "x_parse_rows", {141: "key=None)", 143: "sorted(wanted.items(), )"})
_equivalent("a fast path: the rows picked one by one from the chunk are the same rows (the first row is at "
            "least line 2, so first + last + 1 never equals the count; last - first + 1 is never below it)",
            _TB + "x_parse_rows",
            {171: "== len(nums)) and False", 173: "last - first - 1 == len(nums)",
             174: "last + first + 1 == len(nums)", 175: "last - first + 2 == len(nums)"})
_equivalent("np.fromiter's default dtype is float64, and the cells of a column are exactly m (every row was "
            "checked to have n_fields fields)", _TB + "x_parse_rows",
            {199: "dtype=None, count=m)", 203: "dtype=np.float64, )"})
_equivalent("two wanted names never share a field (callers build wanted from index_columns, one field per "
            "name), so (row, field) never ties", _TB + "x_parse_rows",
            {214: "(bad_k, j) <= first_bad[:2]", 215: "first_bad[:3]"})
_equivalent("with no row the file is refused (no data rows) before line_no is read: its dtype is never seen",
            _TB + "x_parse_rows", {125: "np.zeros(0, dtype=None)", 127: "np.zeros(0, )"})
_equivalent("a single chunk concatenated alone is a copy with the same values", _TB + "x_parse_rows",
            {245: "(len(cols) == 1) and False"})
_equivalent("numpy's default dtype is float64, and None stored in a float64 array is NaN",
            _TB + "x__convert_slow",
            {3: "np.empty(len(cells), dtype=None)", 5: "np.empty(len(cells), )", 9: "out[i] = None"})

def export(work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
    src = work / "src" / "hipback"
    src.parent.mkdir()
    shutil.move(str(work / "hipback"), str(src))
    for name in ("ingest", "processing", "simulator"):
        shutil.move(str(work / name), str(src / name))


def configure(work: Path, group: str) -> list[str]:
    files, tests, globs = GROUPS[group]
    tests = [t for t in tests if (work / t).is_file()]
    lines = ["", "[tool.mutmut]",
             "source_paths = [" + ", ".join(f'"src/hipback/{f}"' for f in files) + "]",
             'also_copy = ["tests", "bench", "dashboards", "docs", "firmware_notes", "src/hipback"]',
             "pytest_add_cli_args = [" + ", ".join(f'"{a}"' for a in PYTEST_ARGS) + "]",
             "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
             ""]
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    text = text.split("\n[tool.mutmut]")[0]
    pyproject.write_text(text + "\n".join(lines))
    shutil.rmtree(work / "mutants", ignore_errors=True)
    return globs


def run_group(work: Path, group: str, max_children: int, *, run: bool = True) -> dict[str, Counter]:
    """Mutate and test one group (``run=False``: only score the results already in ``work``)."""
    globs = configure(work, group) if run else GROUPS[group][2]
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    cmd = ["nice", "-n", "10", str(mutmut), "run", "--max-children", str(max_children), *globs]
    if run:
        print(f"[{group}] {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                         text=True).stdout
    (work / f"results-{group}.txt").write_text(out)  # kept: the next group starts a fresh mutants/ folder
    survivors = [line.strip().rpartition(": ")[0] for line in out.splitlines()
                 if line.strip().endswith((": survived", ": no tests"))]
    diffs = {name: subprocess.run([str(mutmut), "show", name], cwd=work, env=env, capture_output=True,
                                  text=True).stdout
             for name in survivors if any(_match(name, g) for g in globs)}
    (work / f"survivors-{group}.txt").write_text("\n".join(diffs.values()))
    per_module: dict[str, Counter] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name or not any(_match(name, g) for g in globs):
            continue
        if name in diffs and name in EQUIVALENT:
            piece, _reason = EQUIVALENT[name]
            # a piece starting with "-" names a removed line (the mutant deleted it), else an added one
            sign, piece = ("-", piece[1:]) if piece.startswith("-") else ("+", piece)
            lines = [x[1:] for x in diffs[name].splitlines() if x[:1] == sign and x[:3] != sign * 3]
            if any(piece in x for x in lines):
                status = "equivalent"
            else:
                print(f"stale equivalent entry (the mutant no longer adds {piece!r}): {name}", flush=True)
        per_module.setdefault(_module_of(name), Counter())[status] += 1
    return per_module


def _match(name: str, glob: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, glob)


def _module_of(name: str) -> str:
    head = name.split("__mutmut_")[0]
    parts = head.split(".")
    while parts and (parts[-1].startswith("x_") or parts[-1].startswith("xǁ")):
        parts.pop()
    return ".".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", action="append", choices=[*GROUPS, "all", "modules"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hipback-mutation"))
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--show-survivors", action="store_true")
    ap.add_argument("--rescore", action="store_true",
                    help="score the last run of the (one) group in --work again (after marking equivalent "
                         "mutants), without mutating or testing anything")
    args = ap.parse_args()
    groups = args.group or ["lineprotocol", "outbox"]
    if "all" in groups:  # every module once: the whole-folder groups repeat the per-module ones
        groups = [g for g in GROUPS if g not in ("processing", "exercises")]
    elif "modules" in groups:  # every processing module on its own
        groups = [g for g in groups if g != "modules"] + list(PROCESSING_TESTS)
    if args.work.resolve() == ROOT or ROOT in args.work.resolve().parents:
        raise SystemExit("--work must be outside the repository: mutation tools rewrite files")
    if args.rescore and len(groups) != 1:
        raise SystemExit("--rescore scores one group: the last one run in --work")
    if not args.rescore:
        export(args.work)
    print(f"{'module':44s} {'mutants':>8s} {'killed':>7s} {'timeout':>8s} {'survived':>9s} {'no test':>8s} "
          f"{'equiv.':>7s} {'raw':>6s} {'w/o eq':>7s}")
    for group in groups:
        for module, c in sorted(run_group(args.work, group, args.max_children, run=not args.rescore).items()):
            killed, timeout = c["killed"], c["timeout"]
            survived, untested, equivalent = c["survived"], c["no tests"], c["equivalent"]
            total = sum(c.values())
            judged = killed + timeout + survived + untested
            # raw: equivalent mutants count as survivors; adjusted: they are left out
            raw = (killed + timeout) / (judged + equivalent) if judged + equivalent else float("nan")
            adjusted = (killed + timeout) / judged if judged else float("nan")
            print(f"{module:44s} {total:8d} {killed:7d} {timeout:8d} {survived:9d} {untested:8d} "
                  f"{equivalent:7d} {raw:6.1%} {adjusted:7.1%}", flush=True)
        if args.show_survivors:
            mutmut = Path(sys.executable).with_name("mutmut")
            out = subprocess.run([str(mutmut), "results"], cwd=args.work, capture_output=True, text=True)
            print(out.stdout)


if __name__ == "__main__":
    main()
