"""The line protocol's encoder with exact expectations for the survivors of
``python bench/mutation.py --group lineprotocol``: a point left without fields does not end the batch, and
the fields of a point without a time are joined by commas.
"""

from __future__ import annotations

from hipback.ingest.influx.lineprotocol import Point, encode, encode_lines


def test_a_point_without_fields_is_dropped_and_the_next_ones_are_written() -> None:
    points = [
        Point("m", {"s": "a"}, {"x": 1.0}, 10),
        Point("m", {"s": "b"}, {"x": float("nan"), "y": None}, 20),  # nothing left to write
        Point("m", {"s": "c"}, {"x": 3.0}, 30),
        Point("m", {}, {}, 40),
        Point("n", {}, {"z": 4}, 50),
    ]
    assert encode_lines(points) == ["m,s=a x=1.0 10", "m,s=c x=3.0 30", "n z=4i 50"]
    assert encode(points, "ns") == "m,s=a x=1.0 10\nm,s=c x=3.0 30\nn z=4i 50\n"


def test_the_fields_of_a_point_without_time_are_joined_by_commas() -> None:
    point = Point("m", {"s": "a"}, {"x": 1.5, "n": 2, "ok": True, "txt": "hi"})
    assert encode_lines([point]) == ['m,s=a x=1.5,n=2i,ok=true,txt="hi"']
    assert encode_lines([point], "s") == ['m,s=a x=1.5,n=2i,ok=true,txt="hi"']
