"""The centre's dead-letter file is capped: rotated by size, rotated files deleted by age and by total size, and
every rotation and deletion counted. Injected clock; real files in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

from agent.center.config import DeadLetterConfig
from agent.center.deadletter import DeadLetter, DeadLetterSink

T0 = 1_767_225_600.0  # 2026-01-01


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def letter(i: int) -> DeadLetter:
    return DeadLetter(T0, "plant/s1/gw1/kpi", f"reason {i}", b"x" * 700)


def sink(tmp_path: Path, clock: Clock, **limits: float) -> DeadLetterSink:
    config = DeadLetterConfig.model_validate({"file": str(tmp_path / "dead.jsonl"), **limits})
    return DeadLetterSink(config, lambda topic, payload: True, clock)


def test_the_file_rotates_before_it_passes_max_file_bytes_and_no_letter_is_lost(tmp_path: Path) -> None:
    """A record is about 1,000 bytes (700 payload bytes in base64 = 936, plus the JSON around it). With
    max_file_bytes 4,096 the file takes 4 records; the 5th write rotates it: 10 letters -> files of 4, 4 and 2
    records, 2 rotations, nothing deleted, every reason kept once."""
    clock = Clock()
    dead = sink(tmp_path, clock, max_file_bytes=4096)
    record = len(letter(0).record()) + 1
    assert 4 * record <= 4096 < 5 * record
    for i in range(10):
        clock.now += 1
        dead.put([letter(i)])
    assert dead.stats.rotations == 2 and dead.stats.deleted_files == 0
    files = [*dead.rotated(), tmp_path / "dead.jsonl"]
    assert [len(f.read_bytes().splitlines()) for f in files] == [4, 4, 2]
    reasons = [json.loads(x)["reason"] for f in files for x in f.read_bytes().splitlines()]
    assert reasons == [f"reason {i}" for i in range(10)]
    assert all(f.stat().st_size <= 4096 for f in files)


def test_rotated_files_are_deleted_by_age_and_by_total_size_and_counted(tmp_path: Path) -> None:
    """Age: max_age_days 1; the first rotated file is stamped T0+5 s; two days later the next rotation deletes it
    (deleted_files 1). Total: with max_total_bytes 8,192 at most two rotated files of 4 records (~4,000 bytes) are
    kept; three more rotations make four, and the two oldest go (deleted_files 1 + 2)."""
    clock = Clock()
    dead = sink(tmp_path, clock, max_file_bytes=4096, max_age_days=1, max_total_bytes=8192)
    for i in range(5):  # the 5th write rotates: one rotated file, named after T0+5
        clock.now = T0 + i + 1
        dead.put([letter(i)])
    assert [p.name for p in dead.rotated()] == [f"dead.jsonl.{int(T0 + 5)}"]
    clock.now = T0 + 2 * 86400
    for i in range(4):  # fills the file again; the 4th write rotates it and the old file is too old
        dead.put([letter(i)])
        clock.now += 1
    assert dead.stats.rotations == 2 and dead.stats.deleted_files == 1
    assert [p.name for p in dead.rotated()] == [f"dead.jsonl.{int(T0 + 2 * 86400 + 3)}"]
    for _ in range(3):  # three more rotations within the day: 4 rotated files, the total cap keeps the newest two
        for i in range(4):
            dead.put([letter(i)])
            clock.now += 1
    assert dead.stats.rotations == 5 and dead.stats.deleted_files == 1 + 2
    assert len(dead.rotated()) == 2
    assert sum(p.stat().st_size for p in dead.rotated()) <= 8192
    assert dead.stats.deleted_bytes > 0


def test_the_demo_counts_every_quarantined_message_across_rotated_files(tmp_path: Path) -> None:
    """The demo said "0 invalid payloads" while the centre quarantined messages. 10 letters written with
    max_file_bytes 4,096 lie in three files (4 + 4 + 2, see above): the demo's count is 10."""
    from agent.cli.demo import count_quarantined

    clock = Clock()
    config = DeadLetterConfig.model_validate({"file": str(tmp_path / "dead-letter.jsonl"), "max_file_bytes": 4096})
    dead = DeadLetterSink(config, lambda topic, payload: True, clock)
    for i in range(10):
        clock.now += 1
        dead.put([letter(i)])
    assert len(dead.rotated()) == 2
    assert count_quarantined(tmp_path) == 10
