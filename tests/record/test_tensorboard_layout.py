"""What TensorBoard shows, read back from the event files: a log10 loss tag equal to log10 of
the loss, and a Custom Scalars layout that puts the loss first and, for a batch, each
quantity's median with its q10–q90 band in one margin chart."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from tensorboard.util import tensor_util

from implicit_reg.record.events import read_scalars


def read_layout(folder: Path) -> layout_pb2.Layout:
    """The Custom Scalars layout in ``folder``'s event files (the plugin's own tag)."""
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    (event,) = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)
    return layout_pb2.Layout.FromString(tensor_util.make_ndarray(event.tensor_proto).item())


def charts(layout: layout_pb2.Layout) -> dict[str, tuple[str, list[str]]]:
    """Chart title → (kind, its tags) over every category."""
    out = {}
    for category in layout.category:
        for chart in category.chart:
            if chart.HasField("multiline"):
                out[chart.title] = ("multiline", list(chart.multiline.tag))
            else:
                m = chart.margin.series[0]
                out[chart.title] = ("margin", [m.value, m.lower, m.upper])
    return out


def test_a_run_logs_log10_loss_and_a_layout_that_opens_with_the_loss(train_run) -> None:
    """Catches: no log10 tag (a linear loss axis only), a log10 of another base or of ½ℓ, no
    layout, the loss not first, a chart whose tags were never logged (least squares has no
    reconstruction error)."""
    _, out = train_run("model.depth=2", "train.max_steps=300", "train.loss_tol=0")
    scalars = read_scalars(out)
    steps, loss = scalars["loss/train"]
    log_steps, log_loss = scalars["loss/train_log10"]
    assert np.array_equal(steps, log_steps) and len(steps) > 5
    assert np.allclose(log_loss, np.log10(loss), atol=1e-6)
    layout = read_layout(out)
    assert layout.category[0].title == "loss"
    shown = charts(layout)
    assert shown["log10 of the loss"] == ("multiline", ["^loss/train_log10$"])
    assert shown["‖W‖_F, ‖W‖_*, ‖W‖₂"][0] == "multiline"
    assert not any("pinv" in title for title in shown)
    for _, tags in shown.values():  # every chart matches a logged tag
        assert any(re.fullmatch(t.strip("^$"), s) for t in tags for s in scalars)


def test_a_batch_shows_each_quantity_as_a_band(train_run) -> None:
    """A batch of 4 runs: loss, log10 loss and the effective rank are margin charts of
    median/q10/q90, and log10 of each loss quantile is logged. Catches: three separate cards
    per quantity, or a band of tags that do not exist."""
    _, out = train_run("batch.seeds=4", "train.max_steps=200", "train.loss_tol=0")
    scalars = read_scalars(out)
    shown = charts(read_layout(out))
    bands = {tags[0]: tags for kind, tags in shown.values() if kind == "margin"}
    for quantity in ("loss/train", "loss/train_log10", "rank/effective"):
        assert bands[f"{quantity}/median"] == [f"{quantity}/{q}" for q in ("median", "q10", "q90")]
    for tags in bands.values():
        assert all(tag in scalars for tag in tags)
    for q in ("q10", "median", "q90"):
        assert np.allclose(
            scalars[f"loss/train_log10/{q}"][1], np.log10(scalars[f"loss/train/{q}"][1]), atol=1e-6
        )
