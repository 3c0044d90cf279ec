"""Progress bars: tqdm's own switches, and the static mode of the book build."""

import pytest
import torch
from torch import nn

from lessons_lib.progress import progress_bar
from lessons_lib.training import TrainConfig, train


@pytest.fixture(autouse=True)
def _live_mode(monkeypatch):
    monkeypatch.delenv("LESSONS_PROGRESS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)


def test_progress_bar_can_be_disabled():
    with progress_bar(5, "x", enabled=False) as bar:
        bar.update(5)
        assert bar.disable


def test_live_bars_are_on_and_not_kept_by_default():
    with progress_bar(10, "on") as bar:
        assert not bar.disable and not bar.leave
    with progress_bar(10, "kept", leave=True) as bar:
        assert bar.leave


def test_tqdm_disable_switches_every_bar_off(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for kwargs in ({}, {"leave": True}):
        with progress_bar(3, "x", **kwargs) as bar:
            assert bar.disable
    monkeypatch.setenv("LESSONS_PROGRESS", "static")
    with progress_bar(3, "kept", leave=True) as bar:
        assert bar.disable


def test_static_progress_prints_each_kept_bar_once(monkeypatch, capsys):
    monkeypatch.setenv("LESSONS_PROGRESS", "static")
    bar = progress_bar(4, "kept runs", leave=True)
    for _ in range(4):
        bar.update(1)
    assert capsys.readouterr().out == ""  # silent while running
    bar.close()
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kept runs: 100%|██████████| 4/4")

    for kwargs in (dict(leave=False), dict(leave=True, enabled=False), dict(enabled=False)):
        with progress_bar(3, "hidden", **kwargs) as bar:
            bar.update(3)
    assert capsys.readouterr().out == ""


def test_static_progress_keeps_train_quiet(monkeypatch, capsys):
    monkeypatch.setenv("LESSONS_PROGRESS", "static")
    model = nn.Linear(3, 2)
    batch = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    train(model, lambda step: batch, config=TrainConfig(steps=3))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value, hint", [("yes", ""), ("0", "TQDM_DISABLE=1")])
def test_unknown_progress_mode_is_named(monkeypatch, value, hint):
    monkeypatch.setenv("LESSONS_PROGRESS", value)
    with pytest.raises(ValueError, match=f"LESSONS_PROGRESS must be unset or 'static'.*{hint}"):
        progress_bar(1, "bad")


@pytest.mark.parametrize(
    "args, kwargs, error",
    [((-1, "x"), {}, ValueError), ((2.5, "x"), {}, TypeError), ((3, 7), {}, TypeError),
     ((3, "x"), {"enabled": "no"}, TypeError), ((3, "x"), {"leave": 1}, TypeError)],
)
def test_progress_bar_rejects_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        progress_bar(*args, **kwargs)
