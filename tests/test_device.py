"""default_device: CUDA when present, $GUMBEL_DEVICE override, CPU otherwise."""

from __future__ import annotations

import pytest
import torch

from gumbel_lib import default_device, generator_for


def test_default_is_cuda_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUMBEL_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected


def test_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUMBEL_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_bad_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUMBEL_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="GUMBEL_DEVICE"):
        default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_override_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUMBEL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA"):
        default_device()


def test_generator_for_replays() -> None:
    a = torch.rand(3, generator=generator_for("cpu", 1))
    assert torch.equal(a, torch.rand(3, generator=generator_for("cpu", 1)))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_result_on_every_device(device: str) -> None:
    from gumbel_lib import gumbel_max, gumbel_softmax, gumbel_topk

    logits = torch.randn(64, 10, device=device)
    for sampler in (
        lambda gen: gumbel_softmax(logits, 0.5, True, generator=gen),
        lambda gen: gumbel_max(logits, generator=gen),
        lambda gen: gumbel_topk(logits, 3, generator=gen),
    ):
        first = sampler(generator_for(device, 9))
        assert first.device.type == device
        assert torch.equal(first, sampler(generator_for(device, 9)))
