from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gh_collect.durable import storage as storage
from gh_collect.durable.envelope import encode_lines, envelope
from gh_collect.durable.storage import JsonlSink, RawStore, write_atomic
from gh_collect.errors import RawDataMismatchError, StorageError


def lines(n: int, start: int = 0) -> bytes:
    return encode_lines(
        envelope("pulls", "o/r", 1, {"id": i}, "t") for i in range(start, start + n)
    )


def test_append_returns_offsets_at_line_boundaries(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "e" / "f.jsonl", 0)
    first = sink.append(lines(2))
    second = sink.append(lines(3, 2))
    sink.close()
    data = (tmp_path / "e" / "f.jsonl").read_bytes()
    assert second == len(data)
    assert data[first - 1 : first] == b"\n"
    assert [json.loads(x)["data"]["id"] for x in data.splitlines()] == [0, 1, 2, 3, 4]


def test_reopening_cuts_back_to_the_saved_offset(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    sink = JsonlSink(path, 0)
    saved = sink.append(lines(2))
    sink.append(lines(5, 2))  # written after the last save: must not survive a resume
    sink.close()
    resumed = JsonlSink(path, saved)
    resumed.append(lines(1, 99))
    resumed.close()
    ids = [json.loads(x)["data"]["id"] for x in path.read_bytes().splitlines()]
    assert ids == [0, 1, 99]


def test_file_shorter_than_checkpoint_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(RawDataMismatchError, match="shorter") as info:
        JsonlSink(path, 100)
    assert info.value.exit_code == 2  # only a human can mend it: retrying later cannot
    assert "--force" in str(info.value) and "restore" in str(info.value)
    assert path.read_bytes() == b"{}\n"


def test_missing_file_the_checkpoint_counts_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.jsonl"
    with pytest.raises(RawDataMismatchError, match="shorter"):
        JsonlSink(path, 10)
    assert not path.exists()


def test_disk_full_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.jsonl"
    sink = JsonlSink(path, 0)
    sink.append(lines(1))
    real_flush = sink._file.flush

    def full_disk() -> None:
        real_flush()  # the bytes reach the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink._file, "flush", full_disk)
    with pytest.raises(StorageError, match="free some space"):
        sink.append(lines(3, 1))
    monkeypatch.undo()
    sink.close()
    assert path.read_bytes() == lines(1)


def test_sync_fsyncs_open_and_released_files_and_new_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Any] = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    store = RawStore()
    open_sink = store.open(tmp_path / "a" / "x.jsonl", 0)
    open_sink.append(lines(1))
    done = store.open(tmp_path / "a" / "y.jsonl", 0)
    done.append(lines(1))
    store.release(tmp_path / "a" / "y.jsonl")
    store.sync()
    # two files + their folder and its parent for each new file
    assert len(synced) >= 4
    synced.clear()
    store.sync()
    assert synced == []  # nothing new written: nothing to sync
    store.close()


def test_write_atomic_keeps_old_file_when_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "repos.jsonl"
    write_atomic(path, b"old\n")

    def broken_replace(self: Path, target: Path) -> Path:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(path, b"new\n")
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["repos.jsonl"]


def test_unwritable_folder_gives_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # works as root too, unlike chmod
    with pytest.raises(StorageError, match="cannot write"):
        JsonlSink(blocker / "sub" / "f.jsonl", 0)


def test_envelope_shape() -> None:
    env = envelope("issues", "o/r", 3, {"id": 1}, "2025-01-01T00:00:00+00:00")
    assert env == {
        "source": "github_rest",
        "endpoint": "issues",
        "repo": "o/r",
        "page": 3,
        "fetched_at": "2025-01-01T00:00:00+00:00",
        "data": {"id": 1},
    }


def test_envelope_line_of_json_text_is_the_line_encode_lines_writes() -> None:
    from gh_collect.codec import dumps_line
    from gh_collect.durable.envelope import envelope_line

    obj = {"id": 7, "full_name": 'org/ré"po', "nested": {"a": [1, None]}, "fork": False}
    text = dumps_line(obj)[:-1]
    line = envelope_line("repos", 'org/ré"po', 1, "2025-01-01T00:00:00+00:00", text)
    expected = encode_lines([envelope("repos", 'org/ré"po', 1, obj, "2025-01-01T00:00:00+00:00")])
    assert line == expected
