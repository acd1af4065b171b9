import torch
import torch.nn.functional as F

from inception_v2.models import ModelOutput, create_model
from inception_v2.train import InceptionLoss


def lsr_paper(logits, target, eps):
    """Szegedy et al. 2015, section 7: (1 - eps) * CE(p, y) + eps * mean_k(-log p_k)."""
    logp = F.log_softmax(logits, dim=1)
    ce = -logp.gather(1, target[:, None]).squeeze(1)
    return ((1 - eps) * ce + eps * (-logp).mean(dim=1)).mean()


def test_label_smoothing_equals_the_papers_formula():
    g = torch.Generator().manual_seed(0)
    logits, aux1, aux2 = (torch.randn(6, 20, generator=g) * 3 for _ in range(3))
    y = torch.randint(0, 20, (6,), generator=g)
    eps, w = 0.1, 0.3
    got = InceptionLoss(label_smoothing=eps, aux_weight=w)(ModelOutput(logits, (aux1, aux2)), y)
    want = lsr_paper(logits, y, eps) + w * (lsr_paper(aux1, y, eps) + lsr_paper(aux2, y, eps))
    assert torch.allclose(got, want, atol=1e-6)
    # and it is not the "(1 - eps) * CE + eps / K" mistake
    wrong = (1 - eps) * F.cross_entropy(logits, y) + eps / 20
    assert not torch.allclose(InceptionLoss(eps, 0.0)(ModelOutput(logits, ()), y), wrong, atol=1e-3)


def test_no_smoothing_is_plain_cross_entropy():
    logits, y = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    assert torch.allclose(InceptionLoss(0.0, 0.0)(ModelOutput(logits, ()), y), F.cross_entropy(logits, y))


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = create_model("googlenet_bn", num_classes=4).train()
    loss_fn = InceptionLoss(label_smoothing=0.1, aux_weight=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 3] * 2)
    losses = []
    for _ in range(6):
        loss = loss_fn(model.forward_with_aux(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_soft_targets_of_mixup_with_smoothing_on_every_head():
    g = torch.Generator().manual_seed(1)
    logits, aux = (torch.randn(6, 20, generator=g) * 3 for _ in range(2))
    a, b = torch.randint(0, 20, (6,), generator=g), torch.randint(0, 20, (6,), generator=g)
    lam, eps, w = 0.7, 0.1, 0.3
    soft = lam * F.one_hot(a, 20).float() + (1 - lam) * F.one_hot(b, 20).float()
    loss = InceptionLoss(label_smoothing=eps, aux_weight=w)
    got = loss(ModelOutput(logits, (aux,)), soft)

    def smoothed(z, q):  # cross-entropy against (1 - eps) q + eps / K
        return -(((1 - eps) * q + eps / 20) * F.log_softmax(z, dim=1)).sum(dim=1).mean()

    assert torch.allclose(got, smoothed(logits, soft) + w * smoothed(aux, soft), atol=1e-6)
    # the loss is linear in the target: the mix of the two hard-label losses
    hard = lambda y: loss(ModelOutput(logits, (aux,)), y)  # noqa: E731
    assert torch.allclose(got, lam * hard(a) + (1 - lam) * hard(b), atol=1e-5)
    assert torch.allclose(loss(ModelOutput(logits, (aux,)), F.one_hot(a, 20).float()), hard(a), atol=1e-6)
