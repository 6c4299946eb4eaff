"""Scene-graph parsing: clipping, invalid boxes, phrase cleaning, nesting, shared sentences."""

import json
import math
from pathlib import Path

import pytest

from crrg_clip.data.exclusions import ExclusionLog
from crrg_clip.data.scene_graphs import (
    BOXES_DATASET, FILES_DATASET, clean_phrase, list_scene_graph_files, parse_scene_graph,
    parse_scene_graph_files, shard,
)
from crrg_clip.regions import REGIONS

DICOM = "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"


def obj(name, x1, y1, x2, y2, **extra):
    return {"object_id": f"{DICOM}_{name}", "x1": 1, "y1": 1, "x2": 2, "y2": 2, "width": 1, "height": 1,
            "bbox_name": name, "synsets": ["C0"], "name": name.capitalize(), "original_x1": x1,
            "original_y1": y1, "original_x2": x2, "original_y2": y2, "original_width": x2 - x1,
            "original_height": y2 - y1, **extra}


def graph(objects, attributes=()):
    return {"image_id": DICOM, "viewpoint": "PA", "patient_id": 10000032, "study_id": 50414267,
            "gender": "F", "age_decile": "50-60", "reason_for_exam": "___", "StudyOrder": 1,
            "StudyDateTime": "2180-05-06", "objects": list(objects), "attributes": list(attributes),
            "relationships": [], "some_future_key": {"x": 1}}


def by_region(rows):
    return {r[2]: r for r in rows}


def test_one_row_per_region_and_clipping():
    data = graph([
        obj("right lung", -20, -5, 1300, 1900, updated=True),
        obj("left lung", 1200, 400, 3000, 4000),
        obj("spine", 100, 100, 100, 900),  # zero width
        obj("trachea", 500, 600, 400, 700),  # inverted
    ])
    log = ExclusionLog()
    rows = parse_scene_graph(data, (2544, 3056), log)
    assert [r[1] for r in rows] == list(range(29)) and [r[2] for r in rows] == list(REGIONS)
    regions = by_region(rows)
    assert regions["right lung"][3:8] == (0.0, 0.0, 1300.0, 1900.0, True)
    assert regions["left lung"][3:8] == (1200.0, 400.0, 2544.0, 3056.0, True)
    for name in ("spine", "trachea", "carina"):
        assert all(math.isnan(v) for v in regions[name][3:7]) and regions[name][7] is False
    assert set(log.rows) == {(BOXES_DATASET, f"{DICOM}_spine", "box_zero_area"),
                             (BOXES_DATASET, f"{DICOM}_trachea", "box_inverted")}


def test_box_entirely_outside_the_image_is_zero_area():
    log = ExclusionLog()
    rows = parse_scene_graph(graph([obj("abdomen", 2600, 10, 2700, 50)]), (2544, 3056), log)
    assert by_region(rows)["abdomen"][7] is False
    assert log.rows == [(BOXES_DATASET, f"{DICOM}_abdomen", "box_zero_area")]


def test_phrases_keep_digits_and_shared_sentence():
    sentence = "There is a 20 mm nodule\n in the right upper lobe, up from 1.5 cm ."
    attrs = [
        {"bbox_name": "right upper lung zone", "attributes": [["anatomicalfinding|yes|lung lesion", "nlp|yes|abnormal"]],
         "phrases": [sentence], "phrase_IDs": ["1|2"], "sections": ["finalreport"], "right upper lung zone": True},
        {"bbox_name": "right lung", "attributes": [["nlp|yes|abnormal"]], "phrases": [sentence]},
        {"bbox_name": "left lung", "attributes": [["nlp|yes|normal"]], "phrases": ["Left lung is clear."]},
        {"bbox_name": "neck", "attributes": [["nlp|yes|normal"]], "phrases": ["Neck ok."]},
    ]
    rows = by_region(parse_scene_graph(graph([], attrs), None, ExclusionLog()))
    expected = "There is a 20 mm nodule in the right upper lobe, up from 1.5 cm."
    assert clean_phrase(sentence) == expected
    assert rows["right upper lung zone"][8:11] == (expected, True, True)
    assert rows["right lung"][8:11] == (expected, True, True)
    assert rows["left lung"][8:11] == ("Left lung is clear.", True, False)
    assert rows["spine"][8:11] == ("", False, False)


@pytest.mark.parametrize("nested", [False, True])
def test_both_nestings_and_files(tmp_path: Path, nested: bool):
    folder = tmp_path / "silver_dataset" / "scene_graph"
    if nested:
        folder = folder / "scene_graph"
    folder.mkdir(parents=True)
    (folder / f"{DICOM}_SceneGraph.json").write_text(json.dumps(graph([obj("right lung", 1, 2, 30, 40)])))
    (folder / "bad_SceneGraph.json").write_text("{not json")
    files = list_scene_graph_files(tmp_path)
    assert [f.name for f in files] == [f"{DICOM}_SceneGraph.json", "bad_SceneGraph.json"]
    assert shard(files, 1, 2) == [files[1]] and shard(files, 0, 2) == [files[0]]
    frame, log = parse_scene_graph_files(files, {DICOM: (100, 100)})
    assert len(frame) == 29 and frame["box_valid"].sum() == 1
    assert log.rows == [(FILES_DATASET, "bad", "unreadable_scene_graph")]


def test_pool_matches_serial(tmp_path: Path):
    folder = tmp_path / "silver_dataset" / "scene_graph"
    folder.mkdir(parents=True)
    for i in range(40):
        d = f"{i:08x}-00000000-00000000-00000000-00000000"
        data = graph([obj("right lung", i, i, 100 + i, 200)])
        data["image_id"] = d
        (folder / f"{d}_SceneGraph.json").write_text(json.dumps(data))
    files = list_scene_graph_files(tmp_path)
    serial, _ = parse_scene_graph_files(files, {}, workers=1)
    pooled, _ = parse_scene_graph_files(files, {}, workers=2, chunksize=4)
    assert serial.equals(pooled)


def test_gather_shards_sorts_and_refuses_an_image_in_two_shards(tmp_path):
    import pandas as pd

    from crrg_clip.data.scene_graphs import gather_shards

    a = pd.DataFrame({"dicom_id": ["b", "a"], "region_index": [0, 1]})
    b = pd.DataFrame({"dicom_id": ["a"], "region_index": [0]})
    for name, frame in (("a", a), ("b", b)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    out = gather_shards([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    assert list(zip(out["dicom_id"], out["region_index"])) == [("a", 0), ("a", 1), ("b", 0)]
    b.to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match="occurs in two shards"):
        gather_shards([tmp_path / "b.parquet", tmp_path / "dup.parquet"])
