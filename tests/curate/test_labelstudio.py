import base64
import io
import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import invoke
from PIL import Image
from review_helpers import XSS, png, review_data, review_scores, write_review_files

from nctool.cli import review as review_cli
from nctool.curate import labelstudio
from nctool.curate.labelstudio import (
    LABEL_CONFIG,
    MATCH,
    MISMATCH,
    config_path,
    detector_choice,
    export_tasks,
    import_annotations,
)
from nctool.curate.review.queue import ReviewQueue
from nctool.data.decisions import ACTIONS, DecisionStore, default_decisions_path
from nctool.errors import NctoolError
from nctool.schema import write_table

OBJECTS = {"Image", "Text"}  # the config's object tags; the rest that have a toName are controls


class AnyCallable:
    """Equal to any callable (the progress bar's callback the CLI passes)."""

    def __eq__(self, other):
        return callable(other)


@pytest.fixture
def files(tmp_path):
    return write_review_files(tmp_path)


def tasks_of(path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def annotation(action: str | None, *, who, at: str, caption: str | None = None, cancelled: bool = False,
               detector: str = MISMATCH) -> dict:
    """One annotation as Label Studio's JSON export holds it: results in the config's from_name/to_name/type/value
    shape (the detector's pre-filled choice included, as Label Studio submits it with the rest)."""
    result = [{"id": "d1", "from_name": "detector", "to_name": "caption", "type": "choices",
               "value": {"choices": [detector]}, "origin": "prediction"}]
    if action is not None:
        result.append({"id": "d2", "from_name": "decision", "to_name": "caption", "type": "choices",
                       "value": {"choices": [action]}, "origin": "manual"})
    if caption is not None:
        result.append({"id": "d3", "from_name": "new_caption", "to_name": "caption", "type": "textarea",
                       "value": {"text": [caption]}, "origin": "manual"})
    return {"id": 1000, "result": result, "was_cancelled": cancelled, "ground_truth": False, "completed_by": who,
            "created_at": at, "updated_at": at, "lead_time": 3.2}


def label_studio_export(tasks: list[dict], annotations: dict[str, list[dict]]) -> list[dict]:
    """The tasks as Label Studio exports them (format JSON): an id each, their data, predictions and annotations."""
    return [{"id": 100 + i, "data": task["data"], "predictions": task["predictions"],
             "annotations": annotations.get(task["data"]["pair_id"], []), "project": 3}
            for i, task in enumerate(tasks)]


def store_log(path) -> list[tuple]:
    """Every decision in a store, in commit order: (pair_id, action, new_caption, reviewer, row_hash)."""
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT pair_id, action, new_caption, reviewer, row_hash FROM decisions "
                                  "ORDER BY seq").fetchall()


# ---- export ----

def test_tasks_are_the_review_queue_lowest_reliability_first(tmp_path, files):
    data_path, scores_path = files
    result = export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr")
    queue = ReviewQueue.load(data_path, scores_path, detector="rrsitr")
    tasks = tasks_of(tmp_path / "tasks.json")
    assert result == {"out": tmp_path / "tasks.json", "config": tmp_path / "tasks.label_config.xml", "tasks": 21,
                      "bytes": (tmp_path / "tasks.json").stat().st_size}
    assert [task["data"]["pair_id"] for task in tasks] == queue.pairs["pair_id"].to_numpy()[queue.order].tolist()
    first = tasks[0]
    assert first["data"]["pair_id"] == "p04" and first["data"]["caption"] == XSS  # the caption as text, unchanged
    assert set(first) == {"data", "predictions"}
    assert set(first["data"]) == {"image", "caption", "pair_id", "image_id", "rank", "reliability", "label"}
    for rank, (task, row) in enumerate(zip(tasks, queue.order), 1):
        pair = queue.pairs.iloc[row]
        assert task["data"]["rank"] == rank and task["data"]["image_id"] == pair["image_id"]
        assert task["data"]["reliability"] == pair["reliability"] and task["data"]["label"] == pair["label"]
        [prediction] = task["predictions"]
        [choice] = prediction["result"]
        assert prediction["model_version"] == "rrsitr" and 0 <= prediction["score"] <= 1
        assert {k: choice[k] for k in ("from_name", "to_name", "type")} == {
            "from_name": "detector", "to_name": "caption", "type": "choices"}
        assert choice["value"] == {"choices": [detector_choice(pair["label"], None)]}
    assert {task["predictions"][0]["result"][0]["value"]["choices"][0] for task in tasks} == {MATCH, MISMATCH}
    assert (tmp_path / "tasks.label_config.xml").read_text() == LABEL_CONFIG
    export_tasks(data_path, scores_path, tmp_path / "five.json", detector="similarity", limit=5)
    similarity = ReviewQueue.load(data_path, scores_path, detector="similarity")
    assert [task["data"]["pair_id"] for task in tasks_of(tmp_path / "five.json")] == \
        similarity.pairs["pair_id"].to_numpy()[similarity.order[:5]].tolist()


def test_the_detector_opinion_follows_its_label_and_stated_chance():
    assert detector_choice("noisy", None) == MISMATCH and detector_choice("clean", 0.9) == MATCH
    assert detector_choice("ambiguous", 0.5) == MISMATCH and detector_choice("ambiguous", 0.49) == MATCH
    assert detector_choice("ambiguous", None) == MATCH


def test_the_stated_chance_of_a_mismatch_is_in_the_task_and_its_score(tmp_path):
    data = review_data()
    scores = review_scores(data)
    scores["noisy_probability"] = scores["reliability"].rsub(1).where(scores["label"] != "clean")
    write_table(data, tmp_path / "data.parquet")
    write_table(scores, tmp_path / "scores.parquet")
    export_tasks(tmp_path / "data.parquet", tmp_path / "scores.parquet", tmp_path / "tasks.json", detector="rrsitr")
    tasks = tasks_of(tmp_path / "tasks.json")
    stated = [task for task in tasks if "noisy_probability" in task["data"]]
    assert stated and all(task["data"]["label"] != "clean" for task in stated)
    assert all("noisy_probability" not in task["data"] for task in tasks if task["data"]["label"] == "clean")
    for task in stated:
        chance = task["data"]["noisy_probability"]
        choice = task["predictions"][0]["result"][0]["value"]["choices"][0]
        assert choice == (MISMATCH if task["data"]["label"] == "noisy" or chance >= 0.5 else MATCH)
        assert task["predictions"][0]["score"] == pytest.approx(chance if choice == MISMATCH else 1 - chance)


def test_images_are_embedded_as_jpeg_data_urls(tmp_path, files):
    data_path, scores_path = files
    export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr")
    tasks = tasks_of(tmp_path / "tasks.json")
    by_image = {}
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1], validate=True))) as image:
            assert image.format == "JPEG" and image.size == (40, 30)  # small images keep their size
        by_image.setdefault(task["data"]["image_id"], set()).add(url)
    assert all(len(urls) == 1 for urls in by_image.values())  # one image, one picture, whatever its caption


def path_dataset(tmp_path, paths) -> tuple[Path, Path]:
    """The review data with its images as files under tmp_path (paths as given), no bytes."""
    data = review_data()
    for i, image_id in enumerate(data["image_id"].unique()):
        file = tmp_path / paths(i)  # an absolute path stays as it is
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(png((20 * i, 90, 30)))
    data["image"] = [{"bytes": None, "path": paths(int(image_id[3:]))} for image_id in data["image_id"]]
    write_table(data, tmp_path / "data.parquet")
    write_table(review_scores(data), tmp_path / "scores.parquet")
    return tmp_path / "data.parquet", tmp_path / "scores.parquet"


def test_a_url_prefix_links_each_image_by_its_path_under_the_root(tmp_path):
    data_path, scores_path = path_dataset(tmp_path, lambda i: f"images/scene {i}.png")
    export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr",
                 image_url="/data/local-files/?d=rsicd/")
    tasks = tasks_of(tmp_path / "tasks.json")
    assert tasks[0]["data"]["image_id"] == "img1"
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=rsicd/images/scene%201.png"
    assert all(task["data"]["image"] == f"/data/local-files/?d=rsicd/images/scene%20{task['data']['image_id'][3:]}.png"
               for task in tasks)
    # an absolute path under the image root becomes relative to it
    root = tmp_path / "abs"
    data_path, scores_path = path_dataset(root, lambda i: str(root / "pics" / f"{i}.png"))
    export_tasks(data_path, scores_path, tmp_path / "abs.json", image_root=root, detector="rrsitr",
                 image_url="https://host/ds/")
    assert tasks_of(tmp_path / "abs.json")[0]["data"]["image"] == "https://host/ds/pics/1.png"
    with pytest.raises(NctoolError, match=r"image path .*outside the image root .*; pass --image-root"):
        export_tasks(data_path, scores_path, tmp_path / "out.json", image_root=tmp_path / "elsewhere",
                     detector="rrsitr", image_url="https://host/ds/")


def test_a_url_prefix_is_refused_for_images_stored_in_the_file(tmp_path, files):
    data_path, scores_path = files
    with pytest.raises(NctoolError, match=r"data.parquet: pair 'p04' has no image path .*; leave out the URL prefix"):
        export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr", image_url="https://host/")
    with pytest.raises(NctoolError, match="image URL prefix ''"):
        export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr", image_url="")
    with pytest.raises(NctoolError, match="limit 0: too small"):
        export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr", limit=0)
    with pytest.raises(NctoolError, match="is also an input"):
        export_tasks(data_path, scores_path, scores_path, detector="rrsitr")
    assert not (tmp_path / "tasks.json").exists() and not (tmp_path / "tasks.label_config.xml").exists()


def test_the_label_config_parses_and_names_what_the_tasks_hold(tmp_path, files):
    data_path, scores_path = files
    export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr", limit=3)
    assert config_path(tmp_path / "tasks.json") == tmp_path / "tasks.label_config.xml"
    view = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
    tags = list(view.iter())
    objects = {tag.get("name"): tag for tag in tags if tag.tag in OBJECTS}
    controls = {tag.get("name"): tag for tag in tags if tag.get("toName") is not None}
    assert set(objects) == {"image", "caption"} and set(controls) == {"detector", "decision", "new_caption"}
    assert all(control.get("toName") in objects for control in controls.values())
    variables = {tag.get("value")[1:] for tag in objects.values()}
    task = tasks_of(tmp_path / "tasks.json")[0]
    assert variables == {"image", "caption"} and variables <= set(task["data"])
    assert [choice.get("value") for choice in controls["decision"]] == list(ACTIONS)
    assert [choice.get("value") for choice in controls["detector"]] == [MATCH, MISMATCH]
    assert controls["decision"].get("required") == "true" and controls["new_caption"].tag == "TextArea"
    [result] = task["predictions"][0]["result"]
    assert result["from_name"] in controls and controls[result["from_name"]].get("toName") == result["to_name"]
    # the caption box shows only when fix is chosen
    [fix_view] = [tag for tag in tags if tag.tag == "View" and tag.get("visibleWhen")]
    assert (fix_view.get("whenTagName"), fix_view.get("whenChoiceValue")) == ("decision", "fix")
    assert controls["new_caption"] in list(fix_view.iter())


# ---- import ----

T1, T2, T3 = "2026-03-01T09:00:00.000000Z", "2026-03-01T09:30:00.000000Z", "2026-03-01T10:00:00.000000Z"
BOB = {"id": 8, "first_name": "Bob", "last_name": "", "email": "bob@example.org"}


def annotated_export(tmp_path, files) -> tuple[Path, dict]:
    """Tasks exported by nctool, annotated in 'Label Studio' by annotator 7 and bob: (export file, queue)."""
    data_path, scores_path = files
    export_tasks(data_path, scores_path, tmp_path / "tasks.json", detector="rrsitr")
    annotations = {
        "p04": [annotation("drop", who=7, at=T1), annotation("fix", who=BOB, at=T2, caption="a beach with waves")],
        "p08": [annotation("keep", who=7, at=T3), annotation("drop", who=BOB, at=T1)],  # file order is not time order
        "p09": [annotation("keep", who=7, at=T1, cancelled=True)],
        "p00": [annotation(None, who=BOB, at=T1)],  # submitted without a decision
        "p01": [annotation("keep", who=7, at=T2, caption="typed, then keep was chosen")],
    }
    export = label_studio_export(tasks_of(tmp_path / "tasks.json"), annotations)
    (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    return tmp_path / "export.json", ReviewQueue.load(data_path, scores_path, detector="rrsitr")


def test_round_trip_records_every_annotator_in_time_order(tmp_path, files):
    data_path, scores_path = files
    export_path, queue = annotated_export(tmp_path, files)
    store_path = tmp_path / "decisions.sqlite"
    result = import_annotations(data_path, scores_path, export_path, store_path, detector="rrsitr")
    assert result == {"recorded": {"keep": 2, "drop": 2, "fix": 1}, "skipped": {"cancelled": 1, "undecided": 1,
                      "older": 0}, "unannotated": 16, "tasks": 21, "store": store_path,
                      "reviewers": ["label-studio:7", "label-studio:bob@example.org"]}
    bob, seven = "label-studio:bob@example.org", "label-studio:7"
    h = queue.row_hash
    assert store_log(store_path) == [  # time order: T1 first (file order among equals), then T2, then T3
        ("p04", "drop", None, seven, h("p04")), ("p08", "drop", None, bob, h("p08")),
        ("p04", "fix", "a beach with waves", bob, h("p04")), ("p01", "keep", None, seven, h("p01")),
        ("p08", "keep", None, seven, h("p08"))]
    with DecisionStore(store_path) as store:
        current = store.get(["p04", "p08", "p01", "p09", "p00"])
    assert {pair_id: (d["action"], d["new_caption"], d["reviewer"]) for pair_id, d in current.items()} == {
        "p04": ("fix", "a beach with waves", bob), "p08": ("keep", None, seven), "p01": ("keep", None, seven)}
    # importing the same export again records nothing; a decision made later (on the review page) stands
    again = import_annotations(data_path, scores_path, export_path, store_path, detector="rrsitr")
    assert again["recorded"] == {"keep": 0, "drop": 0, "fix": 0} and again["skipped"]["older"] == 5
    assert again["reviewers"] == [] and len(store_log(store_path)) == 5
    with DecisionStore(store_path, reviewer="carol") as store:
        store.record("p08", "drop", row_hash=h("p08"))
    import_annotations(data_path, scores_path, export_path, store_path, detector="rrsitr")
    assert len(store_log(store_path)) == 6 and store_log(store_path)[-1][3] == "carol"


def test_import_names_every_decision_after_the_given_reviewer(tmp_path, files):
    data_path, scores_path = files
    export_path, _ = annotated_export(tmp_path, files)
    result = import_annotations(data_path, scores_path, export_path, tmp_path / "lead.sqlite", detector="rrsitr",
                                reviewer="lead")
    assert result["reviewers"] == ["lead"] and {row[3] for row in store_log(tmp_path / "lead.sqlite")} == {"lead"}
    with pytest.raises(NctoolError, match="reviewer ' ': blank"):
        import_annotations(data_path, scores_path, export_path, tmp_path / "x.sqlite", detector="rrsitr", reviewer=" ")


def spoil(what: str):
    """A change to an exported, annotated file that makes it unfit: (edit of the task list, expected message)."""
    def second(change):
        def edit(tasks):
            change(tasks[1])
            return tasks
        return edit

    def set_choice(value):
        return second(lambda task: task["annotations"][0]["result"][1]["value"].update(choices=[value]))

    return {
        "not a list": (lambda tasks: {"tasks": tasks}, r"export.json: not a Label Studio export \(a JSON dict"),
        "no pair_id": (second(lambda task: task["data"].pop("pair_id")),
                       r"export.json: task #2 \(id 101\): no pair_id"),
        "unknown pair": (second(lambda task: task["data"].update(pair_id="nope")),
                         r"export.json: task #2 \(id 101, pair 'nope'\): pair 'nope' is not in the dataset"),
        "unknown choice": (set_choice("maybe"), r"export.json: task #2 \(id 101, pair 'p08'\): choice 'maybe' is "
                                                r"unknown; use the labeling config"),
        "fix without caption": (set_choice("fix"), r"task #2 \(id 101, pair 'p08'\): fix without a new caption"),
        "another version": (second(lambda task: task["data"].update(caption="another caption")),
                            r"task #2 .*: its caption or image is not the pair's in the dataset"),
        "no annotator": (second(lambda task: task["annotations"][0].pop("completed_by")),
                         r"task #2 .*: an annotation has no annotator"),
    }[what]


@pytest.mark.parametrize("what", ["not a list", "no pair_id", "unknown pair", "unknown choice", "fix without caption",
                                  "another version", "no annotator"])
def test_an_unfit_export_is_refused_naming_the_task_and_records_nothing(tmp_path, files, what):
    data_path, scores_path = files
    export_path, _ = annotated_export(tmp_path, files)
    edit, message = spoil(what)
    tasks = json.loads(export_path.read_text())
    assert tasks[0]["annotations"] and tasks[1]["annotations"]  # a good task first: nothing of it may be recorded
    export_path.write_text(json.dumps(edit(tasks)))
    with pytest.raises(NctoolError, match=message):
        import_annotations(data_path, scores_path, export_path, tmp_path / "decisions.sqlite", detector="rrsitr")
    assert not (tmp_path / "decisions.sqlite").exists()


def test_a_file_that_is_not_json_is_refused_and_records_nothing(tmp_path, files):
    data_path, scores_path = files
    store_path = tmp_path / "decisions.sqlite"
    with DecisionStore(store_path, reviewer="ana") as store:
        store.record("p04", "keep")
    (tmp_path / "export.json").write_text('[{"data": {"pair_id": "p04"}, "annotations": [')
    with pytest.raises(NctoolError, match=r"export.json: not JSON \(.* at line 1\); export the project from Label "
                                          r"Studio as JSON"):
        import_annotations(data_path, scores_path, tmp_path / "export.json", store_path)
    with pytest.raises(NctoolError, match=r"missing.json: file not found"):
        import_annotations(data_path, scores_path, tmp_path / "missing.json", store_path)
    (tmp_path / "exports").mkdir()  # a folder holding the store's folder: named as a folder, not as a place read
    with pytest.raises(NctoolError, match=r"exports: is a folder; give the JSON file Label Studio exported"):
        import_annotations(data_path, scores_path, tmp_path / "exports", tmp_path / "exports" / "d.sqlite")
    assert store_log(store_path) == [("p04", "keep", None, "ana", None)]


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, files, monkeypatch):
    data_path, scores_path = files
    (tmp_path / "export.json").write_text("[]")
    blocker = tmp_path / "file"
    blocker.write_text("x")

    def boom(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(labelstudio, "ReviewQueue", boom)
    with pytest.raises(NctoolError, match=r"tasks.json: cannot be written: .* is a file, not a folder"):
        export_tasks(data_path, scores_path, blocker / "tasks.json", detector="rrsitr")
    with pytest.raises(NctoolError, match=r"d.sqlite: cannot be written: .* is a file, not a folder"):
        import_annotations(data_path, scores_path, tmp_path / "export.json", blocker / "d.sqlite")
    with pytest.raises(NctoolError, match="is also an input"):
        import_annotations(data_path, scores_path, tmp_path / "export.json", data_path)


# ---- the command line ----

def test_cli_maps_the_label_studio_flags_to_the_library(monkeypatch):
    calls = {}
    monkeypatch.setattr(review_cli, "export_tasks", lambda *a, **k: calls.setdefault("export", (a, k)) and {
        "tasks": 4, "bytes": 2_500_000, "out": a[2], "config": Path("t.label_config.xml")})
    monkeypatch.setattr(review_cli, "import_annotations", lambda *a, **k: calls.setdefault("import", (a, k)) and {
        "recorded": {"keep": 1, "drop": 2, "fix": 0}, "skipped": {"cancelled": 1, "undecided": 0, "older": 0},
        "unannotated": 0, "tasks": 3, "reviewers": ["label-studio:7"], "store": a[3]})
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--export-label-studio", "t.json")
    assert result.exit_code == 0, result.output
    assert calls.pop("export") == ((Path("d.parquet"), Path("s.parquet"), Path("t.json")), {
        "detector": "rrsitr", "image_root": None, "image_url": None, "limit": None, "progress": AnyCallable()})
    assert "4 Label Studio tasks (2.5 MB) -> t.json; labeling config -> t.label_config.xml" in result.output
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--export-label-studio", "t.json", "--limit", "7",
                    "--detector", "similarity", "--image-root", "imgs", "--label-studio-url", "https://host/x/")
    assert result.exit_code == 0, result.output
    _, kwargs = calls.pop("export")
    assert (kwargs["limit"], kwargs["detector"], kwargs["image_root"], kwargs["image_url"]) == (
        7, "similarity", Path("imgs"), "https://host/x/")
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--import-label-studio", "e.json")
    assert result.exit_code == 0, result.output
    store = default_decisions_path(Path("s.parquet"))
    assert calls.pop("import") == ((Path("d.parquet"), Path("s.parquet"), Path("e.json"), store),
                                   {"detector": "rrsitr", "reviewer": None})
    assert "3 decisions of 1 reviewer(s) from 3 tasks -> s.decisions.sqlite" in result.output
    result = invoke("review", "d.parquet", "--scores", "s.parquet", "--import-label-studio", "e.json", "--decisions",
                    "m.sqlite", "--reviewer", "lead")
    assert result.exit_code == 0, result.output
    args, kwargs = calls.pop("import")
    assert args[3] == Path("m.sqlite") and kwargs["reviewer"] == "lead"


def test_cli_exports_and_imports_for_real(tmp_path, files):
    data_path, scores_path = files
    result = invoke("review", data_path, "--scores", scores_path, "--export-label-studio", tmp_path / "tasks.json",
                    "--limit", "4")
    assert result.exit_code == 0, result.output
    assert "4 Label Studio tasks" in result.output and (tmp_path / "tasks.label_config.xml").is_file()
    tasks = tasks_of(tmp_path / "tasks.json")
    assert [task["data"]["pair_id"] for task in tasks][0] == "p04" and len(tasks) == 4
    export = label_studio_export(tasks, {"p04": [annotation("drop", who=BOB, at=T1)]})
    (tmp_path / "export.json").write_text(json.dumps(export))
    result = invoke("review", data_path, "--scores", scores_path, "--import-label-studio", tmp_path / "export.json")
    assert result.exit_code == 0, result.output
    assert "1 decisions of 1 reviewer(s) from 4 tasks" in result.output
    row_hash = ReviewQueue.load(data_path, scores_path, detector="rrsitr").row_hash("p04")
    assert store_log(default_decisions_path(scores_path)) == [
        ("p04", "drop", None, "label-studio:bob@example.org", row_hash)]
    (tmp_path / "bad.json").write_text("{}")
    result = invoke("review", data_path, "--scores", scores_path, "--import-label-studio", tmp_path / "bad.json")
    assert isinstance(result.exception, NctoolError) and "bad.json: not a Label Studio export" in str(result.exception)
