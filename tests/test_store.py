"""The history store: on disk (files + SQLite index) and in a real S3-compatible server (moto, in server mode on
loopback), held to the same contract: order, bounds per browser and in total, expiry, forget, damage."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import zipfile

import pytest

from services import config, store
from services.items import HistoryItem

OWNER, OTHER = store.owner_of("token-a" * 6), store.owner_of("token-b" * 6)
BOUNDS = {"ttl_seconds": 3600.0, "max_total_bytes": 10**9}


def item(prompt="in a warehouse", nbytes=1000, created=None, **kwargs) -> HistoryItem:
    fields = dict(image_type="png", engine="offline", seconds=1.5, source_name="mug.jpg", result=b"R" * nbytes,
                  before_preview=b"B" * 10, after_preview=b"A" * 10, thumbnail=b"T" * 10, size=(640, 480),
                  notices=("scaled",))
    if created is not None:
        fields["created"] = created
    fields.update(kwargs)
    return HistoryItem(prompt=prompt, **fields)


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible server on loopback, in this process's threads."""
    try:
        import boto3
        import moto.server as server_module
    except ImportError as exc:  # CI installs requirements-dev.txt: a missing one there is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"the bucket tests need moto and boto3 ({exc})")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    yield endpoint, client
    server.stop()


@pytest.fixture(params=["local", "s3"])
def make_store(request, tmp_path):
    """Factory for a fresh, empty store of each kind with the given bounds."""
    made = []

    def make(**overrides):
        bounds = {**BOUNDS, **overrides}
        if request.param == "local":
            kept = store.LocalStore(tmp_path / f"store{len(made)}", **bounds)
        else:
            _, client = request.getfixturevalue("s3_server")
            bucket = f"{request.node.name.lower().replace('_', '-').replace('[', '-').replace(']', '')}-{len(made)}"
            client.create_bucket(Bucket=bucket[:63])
            kept = store.S3Store(bucket[:63], "history/", client=client, **bounds)
        made.append(kept)
        return kept

    return make


def stored_names(kept) -> list[str]:
    """Every file or object the store holds, by name."""
    if isinstance(kept, store.LocalStore):
        return sorted(str(p.relative_to(kept.root)) for p in kept.root.rglob("*.zip"))
    return sorted(key for key, _, _ in kept._list())


def test_round_trip_keeps_every_field(make_store):
    kept = make_store()
    original = item()
    assert kept.put(OWNER, original) == []
    [entry] = kept.entries(OWNER)
    assert (entry.id, entry.created, entry.nbytes) == (original.id, pytest.approx(original.created, abs=1e-3),
                                                        original.nbytes)
    loaded = kept.load(OWNER, original.id)
    assert loaded.result == original.result and loaded.thumbnail == original.thumbnail
    assert (loaded.prompt, loaded.size, loaded.notices, loaded.id) == (original.prompt, (640, 480), ("scaled",),
                                                                       original.id)


def test_newest_first_and_a_second_put_does_nothing(make_store):
    kept = make_store()
    now = time.time()
    first, second = item("one", created=now - 10), item("two", created=now)
    kept.put(OWNER, second)
    kept.put(OWNER, first)
    assert kept.put(OWNER, second) == []
    assert [i.prompt for i in kept.items(OWNER)] == ["two", "one"]
    assert len(stored_names(kept)) == 2


def test_another_browser_sees_nothing(make_store):
    kept = make_store()
    kept.put(OWNER, item())
    assert kept.entries(OTHER) == [] and kept.items(OTHER) == []


def test_per_browser_bounds_evict_the_oldest(make_store):
    kept = make_store(max_items=3, max_bytes=10_100)
    now = time.time()
    made = [item(str(n), created=now + n) for n in range(5)]
    evicted = [kept.put(OWNER, i) for i in made]
    assert evicted[3] == [made[0].id] and evicted[4] == [made[1].id]
    assert [i.prompt for i in kept.items(OWNER)] == ["4", "3", "2"]
    big = item("big", nbytes=9_000, created=now + 10)
    assert set(kept.put(OWNER, big)) == {made[2].id, made[3].id}  # the bytes bound: only "4" fits beside it
    assert [e.id for e in kept.entries(OWNER)] == [big.id, made[4].id]
    assert len(stored_names(kept)) == 2  # evicted means deleted, not hidden


def test_the_total_bound_evicts_the_oldest_of_any_browser(make_store):
    kept = make_store(max_total_bytes=3_500)
    now = time.time()
    oldest, middle = item("a-old", created=now - 30), item("b-mid", created=now - 20)
    kept.put(OWNER, oldest)
    kept.put(OTHER, middle)
    kept.put(OWNER, item("a-new", created=now - 10))
    assert kept.put(OTHER, item("b-new", created=now)) == []  # what went was the other browser's
    assert [i.prompt for i in kept.items(OWNER)] == ["a-new"]
    assert [i.prompt for i in kept.items(OTHER)] == ["b-new", "b-mid"]
    assert len(stored_names(kept)) == 3


def test_expired_results_are_not_shown_and_are_deleted(make_store):
    kept = make_store(ttl_seconds=60)
    old = item("old", created=time.time() - 120)
    kept.put(OTHER, item("other-old", created=time.time() - 90))
    kept.put(OWNER, old)  # expired already: gone at once
    assert kept.entries(OWNER) == [] and kept.entries(OTHER) == []
    kept.put(OWNER, item("fresh"))
    assert [i.prompt for i in kept.items(OWNER)] == ["fresh"]
    assert len(stored_names(kept)) == 1  # every expired file is gone, whoever it belonged to


def test_delete_and_forget_remove_the_files(make_store):
    kept = make_store()
    a, b, c = item("a"), item("b"), item("c")
    for i in (a, b):
        kept.put(OWNER, i)
    kept.put(OTHER, c)
    kept.delete(OWNER, a.id)
    assert [e.id for e in kept.entries(OWNER)] == [b.id]
    kept.forget(OWNER)
    assert kept.entries(OWNER) == []
    names = stored_names(kept)
    assert len(names) == 1 and OWNER not in names[0]  # the other browser's result stays


def _damage(kept, owner, item_id, data: bytes | None) -> None:
    if isinstance(kept, store.LocalStore):
        path = kept.root / owner / f"{item_id}.zip"
        path.unlink() if data is None else path.write_bytes(data)
    else:
        key = kept._key(owner, item_id)
        if data is None:
            kept.client.delete_object(Bucket=kept.bucket, Key=key)
        else:
            kept.client.put_object(Bucket=kept.bucket, Key=key, Body=data)


@pytest.mark.parametrize("damage", ["garbage", "flipped byte", "missing"])
def test_a_damaged_or_missing_file_is_skipped_with_a_log_line(make_store, damage, caplog):
    kept = make_store()
    now = time.time()
    good, bad = item("good", created=now - 5), item("bad", created=now)
    kept.put(OWNER, good)
    kept.put(OWNER, bad)
    packed = store.pack(bad)
    data = {"garbage": b"not a zip at all", "missing": None,
            "flipped byte": packed.replace(b"R" * 50, b"R" * 49 + b"X", 1)}[damage]
    _damage(kept, OWNER, bad.id, data)
    with caplog.at_level(logging.WARNING, logger="services.store"):
        assert [i.prompt for i in kept.items(OWNER)] == ["good"]
    assert any("skipped" in r.getMessage() for r in caplog.records)
    assert [i.prompt for i in kept.items(OWNER)] == ["good"]


def test_pack_is_a_plain_zip_of_the_files():
    original = item()
    with zipfile.ZipFile(__import__("io").BytesIO(store.pack(original))) as archive:
        assert sorted(archive.namelist()) == ["after.jpg", "before.jpg", "meta.json", "result.png", "thumbnail.jpg"]
        assert archive.read("result.png") == original.result


def test_the_token_is_stored_nowhere(tmp_path):
    token = "ZmFrZS10b2tlbi1mb3ItdGhlLXRlc3Q"
    kept = store.LocalStore(tmp_path, **BOUNDS)
    kept.put(store.owner_of(token), item())
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes()
        assert token not in str(path)


def test_names_that_are_not_hashes_never_reach_a_path(tmp_path):
    kept = store.LocalStore(tmp_path, **BOUNDS)
    with pytest.raises(store.StoreError):
        kept.entries("../../etc")
    with pytest.raises(store.StoreError):
        kept.put(OWNER, item(id="../x"))


def _put_many(root: str, prefix: str, count: int) -> None:
    kept = store.LocalStore(root, ttl_seconds=3600, max_total_bytes=10**9, max_items=20)
    for n in range(count):
        kept.put(OWNER, item(f"{prefix}{n}"))


def test_two_processes_at_once_keep_the_bound_and_lose_nothing_readable(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_put_many, args=(str(tmp_path), p, 15)) for p in ("x", "y")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    kept = store.LocalStore(tmp_path, **BOUNDS)
    items = kept.items(OWNER)
    assert len(items) == 20 and len(list((tmp_path / OWNER).glob("*.zip"))) == 20
    assert [i.created for i in items] == sorted((i.created for i in items), reverse=True)


def test_settings(monkeypatch, tmp_path, s3_server):
    for name in ("HISTORY_TTL_HOURS", "HISTORY_STORE_URL", "HISTORY_STORE_DIR", "HISTORY_STORE_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISTORY_STORE_DIR", str(tmp_path))
    kept = store.from_settings()
    assert isinstance(kept, store.LocalStore) and kept.ttl_seconds == 24 * 3600
    assert kept.max_total_bytes == 1024 * 2**20 and kept.root == tmp_path
    monkeypatch.setenv("HISTORY_TTL_HOURS", "0")
    assert store.from_settings() is None
    monkeypatch.setenv("HISTORY_TTL_HOURS", "2")
    monkeypatch.setenv("HISTORY_STORE_URL", "https://bucket.example.com")
    with pytest.raises(config.ConfigError, match="s3://bucket/prefix"):
        store.from_settings()
    endpoint, client = s3_server
    client.create_bucket(Bucket="from-settings")
    for name, value in (("AWS_ENDPOINT_URL", endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HISTORY_STORE_URL", "s3://from-settings/kept/results")
    kept = store.from_settings()
    assert isinstance(kept, store.S3Store) and kept.prefix == "kept/results/"
    kept.put(OWNER, item("via settings"))
    assert [i.prompt for i in kept.items(OWNER)] == ["via settings"]
    assert client.list_objects_v2(Bucket="from-settings")["Contents"][0]["Key"].startswith(f"kept/results/{OWNER}/")
