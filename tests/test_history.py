"""The bounded history model and the download names."""

import io
import time
import zipfile

import pytest

from services.history import History
from services.items import HistoryItem, download_name, slug


def item(prompt="in a warehouse", result_bytes=1000, **kwargs) -> HistoryItem:
    fields = dict(image_type="png", engine="novita", seconds=1.0, source_name="mug.jpg", result=b"r" * result_bytes,
                  before_preview=b"b", after_preview=b"a", thumbnail=b"t")
    fields.update(kwargs)
    return HistoryItem(prompt=prompt, **fields)


def test_newest_first_and_lookup():
    history = History()
    first, second = item("one"), item("two")
    history.add(first)
    history.add(second)
    assert [i.prompt for i in history] == ["two", "one"]
    assert history.get(first.id) is first
    assert history.get("missing") is None


def test_bounded_by_count_evicts_oldest():
    history = History(max_items=3)
    items = [item(str(n)) for n in range(5)]
    evicted = [history.add(i) for i in items]
    assert [i.prompt for i in history] == ["4", "3", "2"]
    assert evicted[3] == [items[0]] and evicted[4] == [items[1]]


def test_bounded_by_bytes_evicts_oldest_but_keeps_the_newest():
    history = History(max_items=20, max_bytes=10_000)
    history.add(item("small", 3000))
    history.add(item("small2", 3000))
    evicted = history.add(item("big", 6000))
    assert [i.prompt for i in evicted] == ["small"]
    assert history.nbytes <= 10_000
    history.add(item("huge", 50_000))  # larger than the bound alone: kept, everything older goes
    assert [i.prompt for i in history] == ["huge"]


def test_remove_and_clear():
    history = History()
    a, b = item("a"), item("b")
    history.add(a)
    history.add(b)
    assert history.remove(a.id) is True
    assert history.remove(a.id) is False
    assert [i.prompt for i in history] == ["b"]
    history.clear()
    assert len(history) == 0 and history.nbytes == 0


@pytest.mark.parametrize(("source", "prompt", "image_type", "expected"), [
    ("IMG_1234.HEIC", "in a warehouse", "png", "img-1234-in-a-warehouse.png"),
    ("mug.jpg", "On a marble counter, soft light!", "jpeg", "mug-on-a-marble-counter-soft-light.jpg"),
    ("photo", "Café crème", "webp", "photo-cafe-creme.webp"),
    ("../../etc/passwd", "x", "png", "passwd-x.png"), ("C:\\Users\\me\\cat.png", "sofa", "png", "cat-sofa.png"),
    ("日本.png", "海", "png", "photo.png"),
    ("a.b.c.png", "Kid's \"room\" </script>", "webp", "a-b-c-kid-s-room-script.webp"),
])
def test_download_name(source, prompt, image_type, expected):
    assert download_name(source, prompt, image_type) == expected


def test_slug_cuts_at_a_word_boundary():
    text = "on a very long marble kitchen counter in soft morning light with plants"
    assert slug(text) == "on-a-very-long-marble-kitchen-counter-in"
    assert len(slug(text)) <= 40


# --------------------------------------------------------------------- attached to a store (one browser)

from services import store as stores  # noqa: E402

OWNER = stores.owner_of("browser-token-for-the-history-tests")


def test_the_session_and_the_store_drop_the_same_results(tmp_path):
    """One eviction rule: with the same bounds, the session's history and the store keep the same results."""
    history = History(max_items=3, max_bytes=5000)
    kept = stores.LocalStore(tmp_path, ttl_seconds=3600, max_total_bytes=10**9, max_items=3, max_bytes=5000)
    start = time.time()
    for n, size in enumerate([1000, 2500, 900, 100, 4000, 6000, 10, 20, 30, 1200]):
        made = item(str(n), size, created=start + n)
        evicted = history.add(made)
        dropped = kept.put(OWNER, made)
        assert sorted(i.id for i in evicted) == dropped
        assert [i.id for i in history] == [e.id for e in kept.entries(OWNER)]


class CountingStore(stores.LocalStore):
    """The real disk store, counting the results it reads and those it is given."""

    loads = puts = 0

    def load(self, owner, item_id):
        self.loads += 1
        return super().load(owner, item_id)

    def put(self, owner, item):
        self.puts += 1
        return super().put(owner, item)


@pytest.fixture
def kept(tmp_path):
    return CountingStore(tmp_path, ttl_seconds=3600, max_total_bytes=10**9)


def attached(store) -> History:
    history = History()
    history.attach(store, OWNER)
    return history


def test_a_new_session_of_the_browser_finds_what_the_last_one_made(kept):
    first = attached(kept)
    a, b = item("a"), item("b")
    first.add(a)
    first.add(b)
    again = attached(kept)  # a reload: a new session, the same browser
    assert [i.prompt for i in again] == ["b", "a"] and again.get(a.id).result == a.result


def test_what_the_session_held_before_it_knew_its_browser_is_kept(kept):
    history = History()
    history.add(item("made before"))
    history.attach(kept, OWNER)
    assert [i.prompt for i in attached(kept)] == ["made before"]


def test_sync_reads_only_new_results_and_drops_those_gone_elsewhere(kept, monkeypatch):
    monkeypatch.setattr("services.history.SYNC_SECONDS", 0.0)
    mine, other_tab = attached(kept), attached(kept)
    a = item("a")
    mine.add(a)
    loads = kept.loads
    other_tab.sync()
    assert [i.prompt for i in other_tab] == ["a"] and kept.loads == loads + 1
    other_tab.sync()
    mine.sync()
    assert kept.loads == loads + 1  # held results are never read again: reruns stay cheap
    other_tab.remove(a.id)
    mine.sync()
    assert len(mine) == 0 and kept.entries(OWNER) == []


def test_clear_deletes_the_files(kept):
    history = attached(kept)
    for n in range(3):
        history.add(item(str(n)))
    history.clear()
    assert len(history) == 0 and list(kept.root.rglob("*.zip")) == []


def test_a_store_that_fails_leaves_the_result_in_the_session(kept, caplog):
    history = attached(kept)
    (kept.root / "index.sqlite3").unlink()
    (kept.root / "index.sqlite3").mkdir()  # the index can no longer be opened
    with caplog.at_level("WARNING"):
        history.add(item("still here"))
        history.sync(force=True)
    assert [i.prompt for i in history] == ["still here"]
    assert any("this session only" in r.getMessage() for r in caplog.records)


def test_the_writer_keeps_a_result_from_another_thread_before_the_session_adds_it(kept):
    import threading

    history = History()
    assert history.writer() is None
    history.attach(kept, OWNER)
    made = item("made in a worker")
    worker = threading.Thread(target=history.writer(), args=(made,))
    worker.start()
    worker.join()
    assert [e.id for e in kept.entries(OWNER)] == [made.id]  # kept, though the page never collected it
    history.add(made)  # the page collects it later: nothing is written twice
    assert len(list(kept.root.rglob("*.zip"))) == 1 and [i.prompt for i in attached(kept)] == ["made in a worker"]
    assert kept.puts == 1  # not even asked to: each put is a write transaction on the index


def test_a_result_kept_by_the_worker_under_a_key_since_forgotten_is_kept_again_when_collected(kept):
    history = attached(kept)
    made = item("made while Forget was pressed")
    history.writer()(made)
    history.attach(kept, stores.owner_of("the-browsers-new-token"))  # what Forget my photos does to the owner
    history.add(made)
    assert [e.id for e in kept.entries(history.owner)] == [made.id]


def test_a_result_read_in_by_a_sync_before_the_page_collects_it_is_held_once(kept):
    history = History()
    history.attach(kept, OWNER)
    made = item("kept by the worker")
    history.writer()(made)
    history.sync(force=True)  # a rerun between the worker keeping it and the page collecting it
    history.add(made)
    assert [i.id for i in history] == [made.id]


def test_clear_says_so_when_the_store_could_not_delete_and_keeps_everything(kept, caplog):
    history = attached(kept)
    history.add(item("kept"))
    (kept.root / "index.sqlite3").unlink()
    (kept.root / "index.sqlite3").mkdir()  # the store can no longer delete anything
    with caplog.at_level("WARNING"):
        assert history.clear() is False
    assert [i.prompt for i in history] == ["kept"] and list(kept.root.rglob("*.zip"))
    assert any("could not forget" in r.getMessage() for r in caplog.records)


def test_a_result_the_store_keeps_is_held_without_its_bytes_and_read_back_when_asked(kept):
    from services.items import KeptItem

    history = attached(kept)
    made = item("kept", 5000)
    history.add(made)
    held = history.get(made.id)
    assert isinstance(held, KeptItem) and "result" not in vars(held)  # the previews only
    assert held.result == made.result and held.nbytes == made.nbytes  # read back; weighed as before
    assert held.thumbnail == made.thumbnail and held.download_name == made.download_name


def test_a_result_the_store_refused_or_a_history_without_a_store_keeps_its_bytes(kept, caplog):
    alone = History()
    made = item("in the session only")
    alone.add(made)
    assert alone.get(made.id) is made
    history = attached(kept)
    (kept.root / "index.sqlite3").unlink()
    (kept.root / "index.sqlite3").mkdir()  # the store refuses from now on
    with caplog.at_level("WARNING"):
        history.add(made)
    assert history.get(made.id) is made


def test_a_result_gone_from_the_store_says_so_and_the_export_lists_it_as_no_longer_kept(kept):
    from services import export
    from services.items import ResultGone

    history = attached(kept)
    gone, here = item("gone"), item("here")
    history.add(gone)
    history.add(here)
    (kept.root / OWNER / f"{gone.id}.zip").unlink()  # deleted meanwhile, e.g. by another replica
    with pytest.raises(ResultGone):
        history.get(gone.id).result
    archive = zipfile.ZipFile(io.BytesIO(export.zip_results(export.rows_for(history))))
    assert sorted(archive.namelist()) == ["manifest.csv", here.download_name]
    assert "done, no longer kept" in archive.read("manifest.csv").decode()


def test_a_new_owner_reads_the_results_held_without_bytes_from_where_it_keeps_them_now(kept):
    history = attached(kept)
    made = item("made before the browser's key was known")
    history.add(made)
    history.attach(kept, stores.owner_of("the-browsers-new-token"))
    kept.forget(OWNER)  # the old owner's files are gone: the result is read under the new one
    assert history.get(made.id).result == made.result
