"""Figure 4 fits its canvas: every selected region's text is drawn inside the figure."""

import numpy as np
import pandas as pd
import pytest

from crrg_clip.figures import FIGURE4_COLUMNS, default_figure4_id, draw_figure4, figure4_rows
from crrg_clip.regions import REGIONS

LONG = ("There is a patchy opacity in the right upper lung with a further long description that "
        "keeps going so that it must wrap over several lines of the text panel.")


def _rows(n_selected: int) -> pd.DataFrame:
    rows = []
    for i, region in enumerate(REGIONS):
        selected = i < n_selected
        rows.append({"dicom_id": "d1", "region_index": i, "region": region,
                     "x1": 10.0 + i, "y1": 10.0 + i, "x2": 60.0 + i, "y2": 70.0 + i, "detected": True,
                     "selected": selected,
                     "generated_sentence": f"{LONG} ({i})" if selected else "",
                     "reference_sentence": "The right lung is clear." if i % 2 else ""})
    return pd.DataFrame(rows)[FIGURE4_COLUMNS]


@pytest.mark.parametrize("n_selected", [0, 3, 29])
def test_every_text_is_inside_the_canvas(n_selected):
    rows = _rows(n_selected)
    fig = draw_figure4(rows, np.zeros((128, 128), np.uint8))
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    texts = [fig._suptitle] + [t for ax in fig.axes for t in ax.texts]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1, text.get_text()
        assert box.x1 <= width + 1 and box.y1 <= height + 1, text.get_text()
    drawn = " ".join(" ".join(t.get_text().split()) for t in texts)
    for i in range(n_selected):
        assert f"({i})" in drawn  # the end of every selected region's (wrapped) sentence is shown
    # one numbered box per selected region (the image's patches), not 29 overlapping ones
    assert len(fig.axes[0].patches) == n_selected


def test_abnormal_sentences_stand_out():
    rows = _rows(2)
    rows.loc[0, "generated_sentence"] = "Moderate left pleural effusion with blunting of the costophrenic angle."
    rows.loc[1, "generated_sentence"] = "The right lung is clear."
    fig = draw_figure4(rows, np.zeros((128, 128), np.uint8))
    texts = [t for ax in fig.axes for t in ax.texts]
    effusion = next(t for t in texts if "pleural effusion" in t.get_text())
    clear = next(t for t in texts if "generated: The right lung is clear." in t.get_text())
    assert effusion.get_color() != clear.get_color()
    assert effusion.get_fontweight() == "bold"


def test_default_image_has_an_abnormal_reference():
    rows = pd.concat([_rows(1).assign(dicom_id="a"), _rows(1).assign(dicom_id="b")])
    rows.loc[(rows["dicom_id"] == "b") & (rows["region_index"] == 1),
             "reference_sentence"] = "Small left pleural effusion is present."
    assert default_figure4_id(rows) == "b"
    assert figure4_rows(rows, "b")["dicom_id"].eq("b").all()
