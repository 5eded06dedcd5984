"""Label Studio: the review queue as Label Studio tasks, and Label Studio's annotations back as decisions.

`export_tasks` writes one detector's scored pairs, lowest reliability first (the review page's
order), as a Label Studio tasks file: a JSON list of `{"data": ..., "predictions": [...]}`, the
format Label Studio imports. Beside it, `tasks.json` -> `tasks.label_config.xml`, goes the labeling
config (LABEL_CONFIG) the project must use. Each task's data holds `image` (a URL), `caption`,
`pair_id`, `image_id`, `rank` (1 = the lowest reliability), the detector's `reliability`, `label`
and, when it stated one, `noisy_probability`. Its one prediction is the detector's opinion on the
`detector` control, `match` or `mismatch` (`detector_choice`), with the detector as `model_version`;
it pre-fills that control only, never the decision, so nothing the detector says is imported as a
person's decision.

Images: by default each task embeds its image as a `data:image/jpeg;base64,...` URL of the review
page's "large" JPEG (longest side at most 1024 px, `thumbnails.SIZES`): a curator judges a caption
on the details of the image, and the images of the remote-sensing datasets nctool targets (224 to
600 px) pass through at their own size, so the file is self-contained at the cost of its size (an
image is embedded once per task, that is once per caption). With `image_url`, a task's image is
`image_url` + the image's path relative to the image root (URL-quoted), for images Label Studio can
fetch from a server (or its local-files storage, `/data/local-files/?d=`); the dataset's `image`
structs then need their `path`.

`import_annotations` reads a Label Studio JSON export (a list of tasks, each with `data` and
`annotations`) and records, in a DecisionStore, each annotation's choice on the `decision` control
(`keep`, `drop` or `fix`, with the `new_caption` text for a fix) under the reviewer
`label-studio:<email or user id>` and the pair's row hash. The whole file is checked before the
first decision is recorded: a file that is not an export, a task without a known `pair_id`, a
task whose caption or image is not its pair's in the dataset (an export of another version of the
data), an unknown choice or a fix without a caption is refused in one line naming the task.
Annotations are recorded in the order of their time (`updated_at`, else `created_at`), so each
annotator's decision is in the store's log and the newest is the pair's current one. An annotation
that is not newer than the pair's current decision in the store is skipped (`older`): importing
the same export again records nothing, and a decision made later on the review page stands.
Cancelled (skipped) annotations and annotations without a decision are skipped and counted.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import pandas as pd

from nctool.curate.review.queue import ReviewQueue
from nctool.curate.review.thumbnails import Thumbnails
from nctool.data.decisions import ACTIONS, DecisionStore
from nctool.data.images import resolve_root
from nctool.errors import NctoolError
from nctool.progress import Progress, silent
from nctool.schema import atomic_path, check_output, is_blank, iter_batches, row_hashes

IMAGE = "image"            # the Image object tag and the task's data key holding the image URL
CAPTION = "caption"        # the Text object tag and the task's data key holding the caption
DECISION = "decision"      # the Choices control a person decides with: one of ACTIONS
NEW_CAPTION = "new_caption"  # the TextArea control holding the corrected caption of a fix
DETECTOR = "detector"      # the Choices control the detector's prediction pre-fills (never imported)
MATCH, MISMATCH = "match", "mismatch"
IMAGE_SIZE = "large"
"""The Thumbnails size embedded in the tasks (see the module docstring for why)."""

LABEL_CONFIG = f"""<View>
  <Header value="Does the caption describe the image?"/>
  <Image name="{IMAGE}" value="${IMAGE}"/>
  <Text name="{CAPTION}" value="${CAPTION}"/>
  <Header value="The detector's opinion (pre-filled by nctool; not imported)"/>
  <Choices name="{DETECTOR}" toName="{CAPTION}" choice="single" showInline="true">
    <Choice value="{MATCH}"/>
    <Choice value="{MISMATCH}"/>
  </Choices>
  <Header value="Your decision: keep the pair, drop it, or fix its caption"/>
  <Choices name="{DECISION}" toName="{CAPTION}" choice="single-radio" showInline="true" required="true"
           requiredMessage="Choose {', '.join(ACTIONS[:-1])} or {ACTIONS[-1]}">
{chr(10).join(f'    <Choice value="{action}"/>' for action in ACTIONS)}
  </Choices>
  <View visibleWhen="choice-selected" whenTagName="{DECISION}" whenChoiceValue="fix">
    <Header value="The corrected caption (type it, then Add or Shift+Enter)"/>
    <TextArea name="{NEW_CAPTION}" toName="{CAPTION}" rows="2" maxSubmissions="1" editable="true"
              transcription="true" placeholder="the caption this image should have"/>
  </View>
</View>
"""
"""The labeling config of the exported tasks: paste it into the Label Studio project (Settings ->
Labeling Interface -> Code). The import reads the `decision` and `new_caption` controls only."""


def config_path(tasks_path: str | os.PathLike) -> Path:
    """Where the labeling config of a tasks file goes: `tasks.json` -> `tasks.label_config.xml`."""
    tasks_path = Path(tasks_path)
    return tasks_path.with_name(f"{tasks_path.stem}.label_config.xml")


def detector_choice(label: str, noisy_probability: float | None) -> str:
    """The detector's opinion as the `detector` control's choice: `noisy` -> mismatch, `clean` -> match,
    `ambiguous` -> mismatch when the detector puts the chance of a mismatch at 0.5 or more, else match
    (also when it stated no chance)."""
    if label == "noisy":
        return MISMATCH
    if label == "clean":
        return MATCH
    return MISMATCH if noisy_probability is not None and noisy_probability >= 0.5 else MATCH


def export_tasks(data_path: str | os.PathLike, scores_path: str | os.PathLike, out: str | os.PathLike, *,
                 detector: str | None = None, image_root: str | os.PathLike | None = None,
                 image_url: str | None = None, limit: int | None = None, progress: Progress = silent) -> dict:
    """Write one detector's scored pairs, lowest reliability first, as Label Studio tasks (module docstring).

    Parameters
    ----------
    data_path, scores_path
        The dataset and its scores (`nctool score`); scores of another version of the data are refused.
    out
        The tasks JSON file; the labeling config goes beside it (`config_path`). Both written atomically.
    detector
        Whose scores; may be None when the scores file holds one detector.
    image_root
        Folder relative image paths resolve against (default: the dataset's own root).
    image_url
        A URL prefix: a task's image is this + the image's path relative to the image root. None:
        embed each image as a data: URL.
    limit
        Export only the first `limit` pairs of the queue (at least 1); None: all scored pairs.

    Returns `out`, `config` (the XML's path), `tasks` (how many) and `bytes` (the tasks file's size).
    A missing or unreadable image, or (with `image_url`) an image without a path, is refused in one line.
    """
    out = check_output(out, data_path, scores_path)
    config = check_output(config_path(out), data_path, scores_path)
    if limit is not None and limit < 1:
        raise NctoolError(f"limit {limit}: too small; export at least 1 pair")
    if image_url is not None and (not image_url.strip() or image_url != image_url.strip()):
        raise NctoolError(f"image URL prefix {image_url!r}: empty or with spaces around it; give a prefix such "
                          f"as https://host/images/ or /data/local-files/?d=")
    queue = ReviewQueue.load(data_path, scores_path, detector=detector)
    rows = queue.order if limit is None else queue.order[:limit]
    root = resolve_root(data_path, image_root)
    images = (_url_images(data_path, root, image_url, queue, rows) if image_url is not None
              else _embedded_images(Thumbnails(data_path, root, cached_images=1), queue, rows))
    pairs = queue.pairs
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as file:
        file.write("[")
        for done, row in enumerate(rows, 1):
            task = _task(pairs.iloc[int(row)], done, images(int(row)), queue.detector)
            file.write(("\n" if done == 1 else ",\n") + json.dumps(task, ensure_ascii=False, allow_nan=False))
            progress(done, len(rows), "label studio tasks")
        file.write("\n]\n")
    with atomic_path(config) as tmp:
        tmp.write_text(LABEL_CONFIG, encoding="utf-8")
    return {"out": out, "config": config, "tasks": len(rows), "bytes": out.stat().st_size}


def _task(pair: pd.Series, rank: int, image: str, detector: str) -> dict:
    """One Label Studio task: the pair's data and the detector's opinion as a prediction."""
    reliability = float(pair["reliability"])
    probability = pair.get("noisy_probability")
    probability = None if probability is None or pd.isna(probability) else float(probability)
    data = {IMAGE: image, CAPTION: pair["caption"], "pair_id": pair["pair_id"], "image_id": pair["image_id"],
            "rank": rank, "reliability": reliability, "label": pair["label"]}
    if probability is not None:
        data["noisy_probability"] = probability
    choice = detector_choice(pair["label"], probability)
    mismatch = 1 - reliability if probability is None else probability  # how strongly the detector says mismatch
    prediction = {"model_version": detector, "score": mismatch if choice == MISMATCH else 1 - mismatch,
                  "result": [{"id": f"nctool-{rank}", "from_name": DETECTOR, "to_name": CAPTION, "type": "choices",
                              "value": {"choices": [choice]}}]}
    return {"data": data, "predictions": [prediction]}


def _embedded_images(thumbnails: Thumbnails, queue: ReviewQueue, rows) -> Callable[[int], str]:
    """row -> the data: URL of its image; each image is made once and kept until its last task is written."""
    image_ids = queue.pairs["image_id"].to_numpy()
    uses = Counter(image_ids[rows].tolist())
    made: dict[str, str] = {}

    def image(row: int) -> str:
        image_id = image_ids[row]
        if image_id not in made:
            jpeg = thumbnails.jpeg(int(queue.rows_of_image[image_id][0]), IMAGE_SIZE)
            made[image_id] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        uses[image_id] -= 1
        return made[image_id] if uses[image_id] else made.pop(image_id)

    return image


def _url_images(data_path, root: Path, prefix: str, queue: ReviewQueue, rows) -> Callable[[int], str]:
    """row -> prefix + its image's path relative to root; refuses a row whose image has no path."""
    paths = [cell.get("path") if isinstance(cell, dict) else None
             for batch in iter_batches(data_path, columns=["image.path"]) for cell in batch["image"]]
    urls = {}
    for row in rows:
        row = int(row)
        pair_id, path = queue.pairs["pair_id"].iat[row], paths[row]
        if is_blank(path):
            raise NctoolError(f"{data_path}: pair '{pair_id}' has no image path (its image is stored in the file), "
                              f"so a URL prefix cannot point at it; leave out the URL prefix to embed the images "
                              f"in the tasks file")
        relative = Path(path)
        if relative.is_absolute():
            if not relative.is_relative_to(root.absolute()):
                raise NctoolError(f"{data_path}: pair '{pair_id}' has the image path {path}, outside the image root "
                                  f"{root}; pass --image-root with the folder the URL prefix serves")
            relative = relative.relative_to(root.absolute())
        urls[row] = prefix + quote(PurePosixPath(*relative.parts).as_posix(), safe="/")
    return urls.__getitem__


def import_annotations(data_path: str | os.PathLike, scores_path: str | os.PathLike, export_path: str | os.PathLike,
                       store_path: str | os.PathLike, *, detector: str | None = None,
                       reviewer: str | None = None) -> dict:
    """Record the decisions of a Label Studio JSON export in the decision store at `store_path` (module docstring).

    Parameters
    ----------
    data_path, scores_path
        The dataset and the scores the tasks were exported from (`export_tasks`).
    export_path
        Label Studio's export of the project, format "JSON".
    store_path
        The DecisionStore (.sqlite) to record into; created when missing.
    detector
        Whose scores; may be None when the scores file holds one detector.
    reviewer
        Record every decision under this name; None: `label-studio:<annotator's email or user id>`.

    Returns `recorded` (decisions by action), `skipped` (annotations by reason: `cancelled`, `undecided`,
    `older` than the pair's current decision), `unannotated` (tasks without annotations), `tasks`,
    `reviewers` (of the recorded decisions, sorted) and `store`.
    """
    tasks = _read_export(export_path)  # first: a folder given as the export is named as one
    store_path = check_output(store_path, data_path, scores_path, export_path)
    if reviewer is not None and is_blank(reviewer):
        raise NctoolError(f"reviewer {reviewer!r}: blank; name who decided, or leave it out to record the "
                          f"Label Studio annotators")
    queue = ReviewQueue.load(data_path, scores_path, detector=detector)
    planned, skipped, unannotated = [], Counter(), 0
    for index, task in enumerate(tasks, 1):
        where = _where(export_path, index, task)
        pair_id = _pair_of(task, where, queue)
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise NctoolError(f"{where}: 'annotations' is not a list; export the project from Label Studio as JSON")
        unannotated += not annotations
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise NctoolError(f"{where}: an annotation is not an object; export the project from Label Studio "
                                  f"as JSON")
            if annotation.get("was_cancelled"):
                skipped["cancelled"] += 1
                continue
            decision = _decision(annotation, where)
            if decision is None:
                skipped["undecided"] += 1
                continue
            planned.append({"pair_id": pair_id, **decision, "time": _time(annotation, where),
                            "reviewer": reviewer if reviewer is not None else _annotator(annotation, where)})
    # in time order (an annotation without a time first, in file order): the newest is the pair's current one
    planned.sort(key=lambda decision: (decision["time"] is not None, decision["time"] or _EPOCH))
    with DecisionStore(store_path) as store:
        current = {pair_id: _parse_time(decision["time"]) for pair_id, decision in
                   store.get([decision["pair_id"] for decision in planned]).items()}
        newer = []
        for decision in planned:
            newest = current.get(decision["pair_id"])
            if newest is not None and (decision["time"] is None or decision["time"] <= newest):
                skipped["older"] += 1
            else:
                newer.append({**decision, "row_hash": queue.row_hash(decision["pair_id"])})
        store.record_each(newer)  # one transaction: the whole file or nothing
    recorded = Counter(decision["action"] for decision in newer)
    reviewers = {decision["reviewer"] for decision in newer}
    return {"recorded": {action: recorded[action] for action in ACTIONS},
            "skipped": {reason: skipped[reason] for reason in ("cancelled", "undecided", "older")},
            "unannotated": unannotated, "tasks": len(tasks),
            "reviewers": sorted(reviewers), "store": store_path}


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _read_export(export_path: str | os.PathLike) -> list:
    """The tasks of a Label Studio JSON export; refuses a missing file, one that is not JSON or not a list."""
    export_path = Path(export_path)
    if not export_path.is_file():
        raise NctoolError(f"{export_path}: {'is a folder' if export_path.is_dir() else 'file not found'}; give the "
                          f"JSON file Label Studio exported (Export -> JSON)")
    try:
        tasks = json.loads(export_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise NctoolError(f"{export_path}: not JSON (not UTF-8 text); export the project from Label Studio as "
                          f"JSON") from None
    except json.JSONDecodeError as exc:
        raise NctoolError(f"{export_path}: not JSON ({exc.msg} at line {exc.lineno}); export the project from "
                          f"Label Studio as JSON") from None
    if not isinstance(tasks, list):
        raise NctoolError(f"{export_path}: not a Label Studio export (a JSON {type(tasks).__name__}, not a list of "
                          f"tasks); export the project from Label Studio as JSON")
    return tasks


def _where(export_path, index: int, task) -> str:
    """The task as an error names it: the file, its place in the file, Label Studio's id and the pair."""
    if not isinstance(task, dict):
        return f"{export_path}: task #{index}"
    details = [f"id {task['id']}"] if isinstance(task.get("id"), int | str) else []
    data = task.get("data")
    if isinstance(data, dict) and isinstance(data.get("pair_id"), str):
        details.append(f"pair '{data['pair_id']}'")
    return f"{export_path}: task #{index}" + (f" ({', '.join(details)})" if details else "")


def _pair_of(task, where: str, queue: ReviewQueue) -> str:
    """The pair a task is about, refused when unknown or when the task shows another version of it."""
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        raise NctoolError(f"{where}: no 'data'; export the project from Label Studio as JSON (not JSON-MIN or CSV)")
    pair_id = data.get("pair_id")
    if not isinstance(pair_id, str) or not pair_id:
        raise NctoolError(f"{where}: no pair_id in its data; import tasks written by `nctool review "
                          f"--export-label-studio` into the Label Studio project")
    if pair_id not in queue.row_of:
        raise NctoolError(f"{where}: pair '{pair_id}' is not in the dataset; give the dataset the tasks were "
                          f"exported from")
    if isinstance(data.get(CAPTION), str) and isinstance(data.get("image_id"), str):
        shown = row_hashes(pd.DataFrame({"image_id": [data["image_id"]], CAPTION: [data[CAPTION]]}))[0]
        if shown != queue.row_hash(pair_id):
            raise NctoolError(f"{where}: its caption or image is not the pair's in the dataset (the tasks were "
                              f"exported from another version of the data); give the dataset the tasks were "
                              f"exported from")
    return pair_id


def _decision(annotation: dict, where: str) -> dict | None:
    """The `action` and `new_caption` of an annotation; None when it holds no decision."""
    result = annotation.get("result") or []
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise NctoolError(f"{where}: an annotation's 'result' is not a list of results; export the project from "
                          f"Label Studio as JSON")
    choices = [_value(item).get("choices") for item in result if item.get("from_name") == DECISION]
    if not choices:
        return None
    if len(choices) > 1 or not isinstance(choices[0], list) or len(choices[0]) != 1:
        raise NctoolError(f"{where}: the decision is {choices!r}, not one choice; use the labeling config nctool "
                          f"wrote (one of {', '.join(ACTIONS)} per annotation)")
    action = choices[0][0]
    if action not in ACTIONS:
        raise NctoolError(f"{where}: choice {action!r} is unknown; use the labeling config nctool wrote (choices "
                          f"{', '.join(ACTIONS)})")
    if action != "fix":  # a caption typed before the choice moved off fix is hidden on the page: ignored
        return {"action": action, "new_caption": None}
    texts = [text for item in result if item.get("from_name") == NEW_CAPTION
             for text in _texts(_value(item).get("text")) if not is_blank(text)]
    if not texts:
        raise NctoolError(f"{where}: fix without a new caption; type the corrected caption in Label Studio (and "
                          f"press Add) or choose keep or drop, then export again")
    if len(texts) > 1:
        raise NctoolError(f"{where}: fix with {len(texts)} new captions; keep one in Label Studio, then export "
                          f"again")
    return {"action": action, "new_caption": texts[0]}


def _value(item: dict) -> dict:
    """A result's `value` (what its control holds); {} when it has none."""
    value = item.get("value")
    return value if isinstance(value, dict) else {}


def _texts(text) -> list:
    """A TextArea result's texts: Label Studio keeps a list of them (one string also reads)."""
    return [text] if isinstance(text, str) else text if isinstance(text, list) else []


def _time(annotation: dict, where: str) -> datetime | None:
    """When an annotation was last changed (`updated_at`, else `created_at`), in UTC; None when it says not."""
    value = annotation.get("updated_at") or annotation.get("created_at")
    if value is None:
        return None
    try:
        return _parse_time(value)
    except (TypeError, ValueError):
        raise NctoolError(f"{where}: annotation time {value!r} is not an ISO-8601 time; export the project from "
                          f"Label Studio as JSON") from None


def _parse_time(value: str) -> datetime:
    time = datetime.fromisoformat(value)
    return time if time.tzinfo is not None else time.replace(tzinfo=timezone.utc)


def _annotator(annotation: dict, where: str) -> str:
    """`label-studio:` + the annotator's email, else user id (`completed_by`: an id, or a user object)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    if isinstance(who, bool) or not isinstance(who, int | str) or is_blank(str(who)):
        raise NctoolError(f"{where}: an annotation has no annotator (completed_by); name the reviewer "
                          f"(--reviewer NAME)")
    return f"label-studio:{who}"
