"""``train_one_epoch`` options on tiny models and in-memory batches: gradient accumulation,
frozen features, MixUp / CutMix, the fp16 gradient scaler."""

import copy

import pytest
import torch
from torch import nn

from inception_v2.data.transforms import batch_mix
from inception_v2.models import ModelOutput, create_model, get_data_config
from inception_v2.train import EpochLog, InceptionLoss, StepOptions, TrainStep, resolve_config, train_one_epoch
from inception_v2.train.config import DeviceSettings
from inception_v2.train.finetune import freeze_features
from inception_v2.train.optim import build_optimizer

CPU = torch.device("cpu")
QUIET = EpochLog(progress=False)


def _step(model, loss_fn, opt, amp_dtype=None, **options):
    return TrainStep(
        model, opt, loss_fn, settings=DeviceSettings(CPU, amp_dtype=amp_dtype), options=StepOptions(**options)
    )


class Tiny(nn.Module):
    """No BatchNorm, no dropout: a batch and its accumulated halves give the same gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.fc = nn.Linear(4, 5)

    def forward_with_aux(self, x):
        return ModelOutput(self.fc(self.features(x).mean(dim=(2, 3))), ())


def _batches(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, 5, (size,), generator=g)) for _ in range(n)]


def _train(model, loader, accum, scaler=None, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)  # not scale-invariant, unlike Adam
    step = _step(model, InceptionLoss(0.0, 0.0), opt, accum_steps=accum, **kw)
    if scaler is not None:
        step.scaler = scaler
    return train_one_epoch(step, loader, QUIET)


def test_gradient_accumulation_equals_the_larger_batch():
    torch.manual_seed(0)
    big = _batches(3, 16)
    halves = [(x[i : i + 8], y[i : i + 8]) for x, y in big for i in (0, 8)]
    a, b, c = Tiny(), None, None
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    ra = _train(a, big, accum=1, grad_clip_norm=0.5)
    rb = _train(b, halves + halves[:1], accum=2, grad_clip_norm=0.5)  # the odd batch is left over, unused
    assert ra["steps"] == rb["steps"] == 3 and rb["images"] == 48
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6, rtol=0)
    assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-6)
    _train(c, halves, accum=1, grad_clip_norm=0.5)  # six small steps: another result
    assert not all(torch.allclose(pa, pc, atol=1e-4) for pa, pc in zip(a.parameters(), c.parameters()))


def test_too_few_batches_for_one_accumulated_step():
    with pytest.raises(ValueError, match="--grad-accum-steps"):
        _train(Tiny(), _batches(1, 4), accum=2)


def test_frozen_features_stay_unchanged_and_the_heads_train():
    torch.manual_seed(0)
    model = create_model("googlenet_bn", num_classes=4, aux_logits=True)
    frozen = freeze_features(model)
    assert frozen  # the trunk's BatchNorm layers
    before = copy.deepcopy(model.state_dict())
    cfg = resolve_config("blog", model="googlenet_bn", data="d", out="o", freeze_features=True, lr=1e-2)
    opt = build_optimizer(model, cfg)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {
        id(p) for p in model.parameters() if p.requires_grad
    }
    loader = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])) for _ in range(2)]
    step = TrainStep(model, opt, InceptionLoss(0.0, 0.3), settings=DeviceSettings(CPU), frozen=frozen)
    train_one_epoch(step, loader, QUIET)
    after = model.state_dict()
    for k in before:
        if k.startswith("features."):  # weights and BatchNorm statistics alike
            assert torch.equal(before[k], after[k]), k
    for k in ("fc.weight", "aux_heads.4a.fc2.weight", "aux_heads.4a.fc1.weight"):
        assert not torch.equal(before[k], after[k]), k
    assert all(not m.training for m in frozen)


def test_mixup_and_cutmix_give_soft_targets_on_normalized_images():
    data_cfg = get_data_config("googlenet_bn").with_input_size(8)
    g = torch.Generator().manual_seed(0)
    loader = [
        (torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(6) % 5) for _ in range(4)
    ]
    seen = []

    class Spy(InceptionLoss):
        def forward(self, output, target):
            seen.append(target)
            return super().forward(output, target)

    inputs = []
    model = Tiny()
    forward = lambda x: inputs.append(x) or model.forward_with_aux(x)  # noqa: E731
    torch.manual_seed(0)
    step = TrainStep(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        Spy(0.1, 0.0),
        settings=DeviceSettings(CPU),
        options=StepOptions(mix=batch_mix(0.4, 1.0, 5), data_cfg=data_cfg),
        forward=forward,
    )
    train_one_epoch(step, loader, QUIET)
    assert len(seen) == 4
    for target in seen:
        assert target.shape == (6, 5) and target.dtype == torch.float32
        assert torch.allclose(target.sum(dim=1), torch.ones(6))
    assert any((t.max(dim=1).values < 1).any() for t in seen)  # mixed, not one-hot
    # MixUp blends floats after normalization: its pixels leave the uint8 grid (x = (v / 255 - 0.5) / 0.5)
    levels = (torch.cat(inputs) * 0.5 + 0.5) * 255
    assert ((levels - levels.round()).abs() > 1e-3).float().mean() > 0.1


def test_fp16_autocast_with_the_gradient_scaler():
    torch.manual_seed(0)
    model = Tiny()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    start = copy.deepcopy(model.state_dict())
    out = _train(model, _batches(2, 8), accum=1, amp_dtype=torch.float16, scaler=scaler, grad_clip_norm=1.0)
    assert scaler.is_enabled() and scaler.get_scale() == 2.0**10  # finite gradients: no step skipped
    assert out["steps"] == 2 and all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(start["fc.weight"], model.fc.weight)
