import math

import pytest
import torch
from torch import nn

from inception_v2.models import create_model
from inception_v2.train import RMSpropTF, resolve_config
from inception_v2.train.optim import build_ema, build_optimizer, build_scheduler


def test_rmsprop_tf_puts_epsilon_inside_the_square_root():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([p], lr=0.1, decay=0.9, eps=1.0)
    ms, want = torch.ones(2), p.detach().clone()  # TensorFlow starts the mean square at 1
    for g in (torch.tensor([0.5, 3.0]), torch.tensor([-1.0, 0.2])):
        p.grad = g.clone()
        opt.step()
        ms = 0.9 * ms + 0.1 * g**2
        want = want - 0.1 * g / torch.sqrt(ms + 1.0)
    assert torch.allclose(p.detach(), want, atol=1e-7)
    # torch.optim.RMSprop (eps outside the sqrt, ms from 0) takes another step
    q = nn.Parameter(torch.tensor([1.0, -2.0]))
    torch_opt = torch.optim.RMSprop([q], lr=0.1, alpha=0.9, eps=1.0)
    q.grad = torch.tensor([0.5, 3.0])
    torch_opt.step()
    p2 = nn.Parameter(torch.tensor([1.0, -2.0]))
    tf_opt = RMSpropTF([p2], lr=0.1)
    p2.grad = torch.tensor([0.5, 3.0])
    tf_opt.step()
    assert not torch.allclose(q.detach(), p2.detach())


def test_rmsprop_tf_momentum():
    p = nn.Parameter(torch.tensor([1.0]))
    opt = RMSpropTF([p], lr=0.1, momentum=0.9)
    p.grad = torch.tensor([2.0])
    opt.step()
    step1 = 0.1 * 2.0 / math.sqrt(0.9 + 0.1 * 4 + 1.0)
    assert p.item() == pytest.approx(1.0 - step1, abs=1e-6)
    p.grad = torch.tensor([0.0])
    opt.step()  # momentum keeps moving it
    assert p.item() == pytest.approx(1.0 - step1 - 0.9 * step1, abs=1e-6)


BASE = dict(model="googlenet_bn", data="d", out="o")


def test_rmsprop_tf_weight_decay_is_added_to_the_gradient():
    p = nn.Parameter(torch.tensor([2.0]))
    opt = RMSpropTF([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.tensor([1.0])
    opt.step()
    g = 1.0 + 0.5 * 2.0  # TensorFlow's L2 loss wd * w**2 / 2 adds wd * w to the gradient
    assert p.item() == pytest.approx(2.0 - 0.1 * g / math.sqrt(0.9 + 0.1 * g * g + 1.0), abs=1e-6)


def test_optimizers_of_the_recipes_and_the_options():
    model = nn.Linear(3, 2)
    blog = resolve_config("blog", **BASE)
    adam = build_optimizer(model, blog)
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.9, 0.999)
    paper = build_optimizer(model, resolve_config("paper", batch_size=32, **BASE))
    assert isinstance(paper, RMSpropTF) and paper.param_groups[0]["lr"] == pytest.approx(0.045)
    assert paper.defaults["momentum"] == 0.9
    adamw = build_optimizer(model, resolve_config("blog", optimizer="adamw", weight_decay=0.05, momentum=0.8, **BASE))
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["betas"] == (0.8, 0.999)
    sgd = build_optimizer(model, resolve_config("blog", optimizer="sgd", nesterov=True, momentum=0.9, **BASE))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9


def test_weight_decay_groups_leave_batchnorm_and_biases_alone():
    model = create_model("googlenet_bn", num_classes=4)
    opt = build_optimizer(model, resolve_config("paper", **BASE))
    groups = {g["name"]: g for g in opt.state_dict()["param_groups"]}
    assert set(groups) == {"decay", "no_decay"}
    assert groups["decay"]["weight_decay"] == 4e-5 and groups["no_decay"]["weight_decay"] == 0.0
    group_of = {id(p): g["name"] for g in opt.param_groups for p in g["params"]}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(group_of) == len(list(model.parameters()))
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        is_norm = isinstance(modules[owner], nn.modules.batchnorm._BatchNorm)
        assert group_of[id(p)] == ("no_decay" if (is_norm or leaf == "bias") else "decay"), name
    assert group_of[id(model.fc.weight)] == "decay" and group_of[id(model.fc.bias)] == "no_decay"
    # without weight decay nor head lr: one group, as the blog recipe always had
    assert len(build_optimizer(model, resolve_config("blog", **BASE)).param_groups) == 1


def test_head_lr_groups():
    model = create_model("googlenet_bn", num_classes=4)
    opt = build_optimizer(model, resolve_config("blog", head_lr=0.05, **BASE))
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"features", "head"}
    assert groups["head"]["lr"] == 0.05 and groups["features"]["lr"] == 1e-3
    head = {id(p) for p in model.fc.parameters()} | {id(p) for p in model.aux_heads.parameters()}
    assert {id(p) for p in groups["head"]["params"]} == head


def _lrs(cfg, steps_per_epoch, n):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs, sched


def test_warmup_then_cosine_curve():
    cfg = resolve_config("blog", lr=0.1, lr_schedule="cosine", warmup_epochs=1, epochs=5, min_lr=0.001, **BASE)
    lrs, _ = _lrs(cfg, steps_per_epoch=4, n=20)
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # per-step linear warm-up
    total, warm = 20, 4
    want = [0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - 1 - warm))) for s in range(4, 20)]
    assert lrs[4:] == pytest.approx(want)
    assert lrs[-1] == pytest.approx(0.001) and max(lrs) == pytest.approx(0.1)


def test_step_schedule_matches_steplr_per_epoch_bit_for_bit():
    cfg = resolve_config("paper", batch_size=32, epochs=30, **BASE)
    lrs, _ = _lrs(cfg, steps_per_epoch=3, n=90)
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.94)
    per_epoch = []
    for _ in range(30):
        per_epoch.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs == [lr for lr in per_epoch for _ in range(3)]  # exact, not approximate


def test_exponential_schedule_is_smooth_and_min_lr_is_a_floor():
    cfg = resolve_config(
        "seed", lr=0.1, lr_schedule="exponential", lr_step_epochs=2, lr_decay=0.5, epochs=40, min_lr=0.01, **BASE
    )
    lrs, sched = _lrs(cfg, steps_per_epoch=2, n=80)
    assert lrs[1] == pytest.approx(0.1 * 0.5 ** (1 / 4)) and lrs[4] == pytest.approx(0.05)
    assert min(lrs) == pytest.approx(0.01) and all(a >= b for a, b in zip(lrs, lrs[1:]))
    sched.set_step(4)
    assert sched.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_ema_follows_tensorflow_warm_up_and_averages_buffers():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2))
    ema = build_ema(model, 0.9999)
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    ema.update_parameters(model)  # first update copies
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].running_mean.fill_(1.0)
    ema.update_parameters(model)  # n = 1: decay min(0.9999, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.module[0].weight, torch.full((2, 2), 1 - d))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 1 - d))
    assert build_ema(model, None) is None
