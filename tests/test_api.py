"""The library's options: choices given as enums or as the command line spells them."""

from __future__ import annotations

import pytest

from placer.api import ModelOptions
from placer.choices import DType, Fusion, Mode, Optimizer
from placer.errors import InputError


def test_choices_given_by_value_become_enums():
    options = ModelOptions(mode="training", dtype="bf16", optimizer="sgd", fusion="none")
    assert options.mode is Mode.TRAINING and options.dtype is DType.BF16
    assert options.optimizer is Optimizer.SGD and options.fusion is Fusion.NONE
    assert ModelOptions(mode=Mode.TRAINING) == options.__class__(mode="training")


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("mode", "train", "--mode"), ("dtype", ["fp16"], "--dtype"),
    ("optimizer", "lamb", "--optimizer"), ("fusion", None, "--fusion"),
])  # fmt: skip
def test_an_unknown_choice_is_refused_naming_the_option(field, value, flag):
    with pytest.raises(InputError, match=f"^{flag}: expected one of "):
        ModelOptions(**{field: value})
