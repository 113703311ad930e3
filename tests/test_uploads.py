"""What a batch takes from its uploads: photos and ZIPs, one budget of photos and bytes across all of them,
members too big refused from their header, reading bounded when a header lies, one refusal per file left out
(worded by components.messages)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import pytest

from components.messages import refusal_sentence
from services import images, uploads
from tests.conftest import photo_bytes

MB = 1024 * 1024


def photos(n: int, prefix: str = "photo") -> list[tuple[str, bytes]]:
    """n small distinct JPEGs named photo01.jpg, photo02.jpg, …"""
    return [(f"{prefix}{i + 1:02d}.jpg", photo_bytes(size=(64, 48), colour=(20 * i % 256, 90, 200 - 2 * i)))
            for i in range(n)]


def make_zip(entries: list[tuple[str, bytes | None]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of (name, bytes) entries; bytes None makes a folder entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in entries:
            if data is None:
                archive.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                archive.writestr(name, data)
    return buf.getvalue()


def lying_zip(name: str, real_size: int, claimed: int) -> bytes:
    """A ZIP whose one member inflates to `real_size` zero bytes while both its headers claim `claimed`."""
    data = bytearray(make_zip([(name, bytes(real_size))]))
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, claimed)  # uncompressed size in the local header
    struct.pack_into("<I", data, central + 24, claimed)  # ... and in the central directory, which zipfile reads
    return bytes(data)


def take(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """What a batch takes, and what it left out as the sentences a person reads."""
    got, refused = uploads.photos_from_uploads(files)
    assert all(isinstance(refusal, uploads.UploadRefusal) for refusal in refused)
    return got, [refusal_sentence(refusal) for refusal in refused]


def is_sentence(text: str) -> bool:
    return len(text) > 15 and (text[0].isupper() or text[0].isdigit() or text[0] == "“") and text[-1] in ".!?"


def peak_while(action) -> tuple[object, int]:
    """Run `action()` and return (its result, the most bytes Python held meanwhile beyond the start)."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------------- photos and ZIPs


def test_plain_photos_pass_through():
    named = photos(3)
    got, skipped = take(named)
    assert got == named and skipped == []


def test_a_zip_of_photos_is_expanded_skipping_folders_macos_and_hidden_files():
    a, b, c = photo_bytes(fmt="JPEG"), photo_bytes(fmt="PNG"), photo_bytes(fmt="WEBP")
    archive = make_zip([
        ("shoot/", None),
        ("shoot/a.jpg", a),
        ("shoot/.hidden.jpg", a),
        (".DS_Store", b"\0\0\0\1Bud1"),
        ("__MACOSX/", None),
        ("__MACOSX/shoot/._a.jpg", b"\0\5\26\7 resource fork"),
        ("shoot/more/b.png", b),
        ("c.webp", c),
    ])
    got, skipped = take([("first.jpg", a), ("Shoot.ZIP", archive), ("last.png", b)])
    assert [name for name, _ in got] == ["first.jpg", "a.jpg", "b.png", "c.webp", "last.png"]
    assert [data for _, data in got] == [a, a, b, c, b]
    assert skipped == []


@pytest.mark.parametrize("data", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 40, "truncated"])
def test_a_damaged_zip_gives_a_sentence_and_the_other_photos_carry_on(data):
    if data == "truncated":
        whole = make_zip([("a.jpg", photo_bytes()), ("b.jpg", photo_bytes())])
        data = whole[: len(whole) // 2]
    got, skipped = take([("good.jpg", photo_bytes()), ("broken.zip", data),
                                                ("after.jpg", photo_bytes())])
    assert [name for name, _ in got] == ["good.jpg", "after.jpg"]
    assert len(skipped) == 1 and skipped[0].startswith("“broken.zip” could not be opened")
    assert is_sentence(skipped[0])


def test_a_damaged_member_is_named_and_the_rest_of_its_zip_carries_on():
    whole = bytearray(make_zip([("a.jpg", photo_bytes(fmt="PNG") + b"padding " * 500), ("b.jpg", photo_bytes())]))
    start_of_data = 30 + len("a.jpg")
    for i in range(start_of_data + 10, start_of_data + 200):
        whole[i] ^= 0x5A
    got, skipped = take([("shoot.zip", bytes(whole))])
    assert [name for name, _ in got] == ["b.jpg"]
    assert len(skipped) == 1 and skipped[0].startswith("“a.jpg” in “shoot.zip” could not be read")
    assert is_sentence(skipped[0])


# -------------------------------------------------------------------------------------- one budget per batch


@pytest.mark.parametrize(("layout", "first_left_out", "more"), [
    ("plain", "“photo51.jpg”", 2),  # 53 plain photos
    ("one zip", "“photo51.jpg” in “all.zip”", 4),  # one ZIP of 55
    ("zips", "“b21.jpg” in “b.zip”", 9 + 30),  # ZIPs of 30, 30 and 30: counted across them, not per ZIP
    ("zip then plain", "“late01.jpg”", 2),
])
def test_fifty_photos_a_batch_across_every_upload_and_zip(layout, first_left_out, more):
    if layout == "plain":
        files = photos(53)
    elif layout == "one zip":
        files = [("all.zip", make_zip(photos(55), compression=zipfile.ZIP_STORED))]
    elif layout == "zips":
        files = [(f"{p}.zip", make_zip(photos(30, p))) for p in "abc"]
    else:
        files = [("all.zip", make_zip(photos(50)))] + photos(3, "late")
    got, skipped = take(files)
    assert len(got) == uploads.MAX_PHOTOS == 50
    assert skipped == [f"{first_left_out} and {more} more were left out: one batch takes at most 50 photos. "
                       "Run them in another batch."]


@pytest.mark.parametrize(("layout", "taken", "first_left_out"), [
    ("plain", ["photo01.jpg", "photo02.jpg"], "“photo03.jpg”"),
    ("zips", ["a01.jpg", "a02.jpg"], "“b01.jpg” in “b.zip”"),  # a second ZIP does not start its own budget
    ("zip members", ["a01.jpg", "a02.jpg"], "“b01.jpg” in “a.zip”"),
])
def test_the_byte_budget_counts_across_every_upload_and_zip(monkeypatch, layout, taken, first_left_out):
    named = photos(2, "a") if layout != "plain" else photos(2)
    size = max(len(data) for _, data in named)
    monkeypatch.setattr(uploads, "MAX_BATCH_BYTES", int(size * 2.5))
    if layout == "plain":
        files = photos(4)
    elif layout == "zips":
        files = [("a.zip", make_zip(named)), ("b.zip", make_zip(photos(2, "b")))]
    else:
        files = [("a.zip", make_zip(named + photos(2, "b")))]
    got, skipped = take(files)
    assert [name for name, _ in got] == taken
    assert len(skipped) == 1
    assert skipped[0].startswith(f"{first_left_out} and 1 more were left out: one batch takes at most ")
    assert skipped[0].endswith(" MB of photos. Run them in another batch.")


def test_the_byte_budget_names_its_limit_in_megabytes():
    assert uploads.MAX_BATCH_BYTES == 300 * MB
    budget = uploads._Budget(size=uploads.MAX_BATCH_BYTES - 10)
    assert not budget.admits(11, ("x.jpg", None))
    assert [refusal_sentence(r) for r in budget.refusals()] == ["“x.jpg” was left out: one batch takes at most 300 MB of photos. "
                                                                "Run it in another batch."]


# ----------------------------------------------------------------------------------- members too big to read


@pytest.mark.parametrize("member_mb", [31, 96])
def test_a_member_over_30_mb_is_refused_from_its_header_without_reading_it(member_mb):
    small = photo_bytes()
    archive = make_zip([("huge.png", bytes(member_mb * MB)), ("small.jpg", small)])
    assert len(archive) < MB  # a ZIP bomb: small upload, big member
    (got, skipped), peak = peak_while(lambda: take([("bomb.zip", archive)]))
    assert got == [("small.jpg", small)]  # the other photos carry on
    assert skipped == [f"“huge.png” in “bomb.zip” is {member_mb} MB; the limit is 30 MB a photo. "
                       "Export a smaller one and add it on its own."]
    assert peak < 2 * MB, f"{peak / MB:.1f} MB held: the member was read"


@pytest.mark.parametrize(("real_mb", "claimed"), [(40, 1000), (40, 29 * MB), (200, 29 * MB)])
def test_a_member_whose_header_lies_is_read_only_up_to_the_limit(real_mb, claimed):
    archive = lying_zip("liar.jpg", real_mb * MB, claimed)
    (got, skipped), peak = peak_while(lambda: take([("liar.zip", archive)]))
    assert got == []
    assert skipped == ["“liar.jpg” in “liar.zip” could not be read (damaged, encrypted or bigger than it "
                       "says). Add that photo on its own."]
    bound = min(claimed, images.MAX_FILE_BYTES) * 1.15 + 3 * MB  # a buffer's growth, a chunk or two beyond
    assert peak < bound, f"{peak / MB:.1f} MB held for a {real_mb} MB member that claims {claimed} bytes"


def test_a_plain_upload_over_30_mb_is_refused_with_a_sentence():
    got, skipped = take([("big.jpg", bytes(images.MAX_FILE_BYTES + 1)),
                                                ("ok.jpg", photo_bytes())])
    assert [name for name, _ in got] == ["ok.jpg"]
    assert skipped == ["“big.jpg” is 30.0 MB; the limit is 30 MB a photo. Export a smaller JPEG and add it again."]


def test_a_zip_of_too_many_files_is_refused_before_its_directory_is_read():
    archive = make_zip([(f"{i}.txt", b"") for i in range(uploads.MAX_ZIP_FILES + 1)], zipfile.ZIP_STORED)
    got, skipped = take([("many.zip", archive), ("ok.jpg", photo_bytes())])
    assert [name for name, _ in got] == ["ok.jpg"]
    assert skipped == ["“many.zip” holds more than 1000 files, so it was not opened. "
                       "Put up to 50 photos in a ZIP and add it again."]


def test_many_refusals_are_listed_up_to_a_few_then_counted():
    archive = make_zip([(f"huge{i}.png", bytes(31 * MB)) for i in range(9)])
    got, skipped = take([("bombs.zip", archive)])
    assert got == []
    assert len(skipped) == uploads.MAX_NOTES + 1
    assert all(s.startswith(f"“huge{i}.png” in “bombs.zip” is 31 MB") for i, s in enumerate(skipped[:-1]))
    assert skipped[-1] == "3 more files were left out for the same reasons; check them and add them again."
    assert all(map(is_sentence, skipped))
