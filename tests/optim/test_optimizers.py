"""Optimizers against torch.optim over several steps, fast AdamW = reference, state dicts, clipping, groups."""

import numpy as np
import pytest
import torch

import autograd as ag
from autograd import nn, optim
from autograd.kernels import dispatch
from autograd.nn.utils import clip_grad_norm_

RNG = np.random.default_rng(0)


def _twin_params(shapes):
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    return [nn.Parameter(ag.tensor(a)) for a in arrays], [torch.nn.Parameter(torch.tensor(a)) for a in arrays]


def _run(ours_opt, torch_opt, ours, theirs, steps=6, lr_schedule=None):
    for step in range(steps):
        grads = [RNG.standard_normal(p.shape).astype(np.float32) for p in ours]
        for p, g in zip(ours, grads):
            p.grad = ag.tensor(g)
        for p, g in zip(theirs, grads):
            p.grad = torch.tensor(g)
        if lr_schedule:
            optim.set_lr(ours_opt, lr_schedule[step])
            for group in torch_opt.param_groups:
                group["lr"] = lr_schedule[step]
        ours_opt.step()
        torch_opt.step()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_adamw_matches_torch(reference):
    ours, theirs = _twin_params([(7, 5), (5,), (3, 4, 2, 2)])
    groups = lambda ps: [{"params": ps[:1], "weight_decay": 0.05}, {"params": ps[1:], "weight_decay": 0.0}]
    with dispatch.use_reference(reference):
        _run(optim.AdamW(groups(ours), lr=1e-2, betas=(0.9, 0.99), eps=1e-8),
             torch.optim.AdamW(groups(theirs), lr=1e-2, betas=(0.9, 0.99), eps=1e-8), ours, theirs,
             lr_schedule=[1e-2, 2e-2, 3e-2, 2e-2, 1e-2, 5e-3])


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch(nesterov):
    ours, theirs = _twin_params([(6, 3), (3,)])
    _run(optim.SGD(ours, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov),
         torch.optim.SGD(theirs, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov), ours, theirs)


def test_adamw_state_dict_resumes_exactly():
    shapes = [(4, 3), (3,)]
    grads = [[RNG.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
    start = [RNG.standard_normal(s).astype(np.float32) for s in shapes]

    def run(steps, opt_state=None, params=None):
        params = params or [nn.Parameter(ag.tensor(a)) for a in start]
        opt = optim.AdamW(params, lr=0.1, weight_decay=0.1)
        if opt_state:
            opt.load_state_dict(opt_state)
        for g in steps:
            for p, gi in zip(params, g):
                p.grad = ag.tensor(gi)
            opt.step()
        return params, opt

    straight, _ = run(grads)
    half, opt = run(grads[:2])
    saved = opt.state_dict()
    resumed, _ = run(grads[2:], saved, [nn.Parameter(ag.tensor(p.numpy().copy())) for p in half])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_state_dict_checks_shapes():
    opt = optim.AdamW([nn.Parameter(ag.zeros(3))], lr=0.1)
    with pytest.raises(ValueError, match="groups of sizes"):
        opt.load_state_dict({"state": {}, "param_groups": [{"num_params": 2}]})


def test_weight_decay_groups_skip_biases_norms_and_gammas():
    import tinyconvnext

    model = tinyconvnext.create_model("convnext_atto", num_classes=10)
    decay, no_decay = optim.weight_decay_groups(model.named_parameters(), 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    gammas = [p for n, p in model.named_parameters() if n.endswith("gamma")]
    assert gammas and all(any(g is q for q in no_decay["params"]) for g in gammas)
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())


def test_clip_grad_norm_matches_torch():
    ours, theirs = _twin_params([(5, 4), (4,)])
    for p, t in zip(ours, theirs):
        g = RNG.standard_normal(p.shape).astype(np.float32) * 3
        p.grad, t.grad = ag.tensor(g), torch.tensor(g)
    norm = clip_grad_norm_(ours, 1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert abs(norm - float(torch_norm)) < 1e-4
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cosine_schedule_shape():
    lrs = [optim.cosine_with_warmup(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5, abs=0.02) and lrs[-1] < 0.001
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


@pytest.mark.parametrize("size", [5, 1000, 3 * (1 << 14) + 17])
@pytest.mark.parametrize("parallel_from", [1, 1 << 30])
def test_fused_adamw_serial_and_chunked_paths_equal_the_reference(monkeypatch, size, parallel_from):
    """The Numba update, serial or cut into chunks (sizes that are not a multiple of the chunk), against the
    array formula; the two Numba paths give the very same bits."""
    from autograd.kernels.cpu import adamw as fused
    from autograd.optim.adamw import adamw_update_reference

    monkeypatch.setattr(fused, "PARALLEL_MIN_SIZE", parallel_from)
    rng = np.random.default_rng(size)
    p0, m0 = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32) * 0.1
    v0, g = rng.random(size).astype(np.float32) * 0.01, rng.standard_normal(size).astype(np.float32)
    hyper = dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, step=7)
    fast, ref = [a.copy() for a in (p0, m0, v0)], [a.copy() for a in (p0, m0, v0)]
    fused.adamw_update(fast[0], g, fast[1], fast[2], **hyper)
    adamw_update_reference(ref[0], g, ref[1], ref[2], **hyper)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
    monkeypatch.setattr(fused, "PARALLEL_MIN_SIZE", 1 << 30 if parallel_from == 1 else 1)
    other = [a.copy() for a in (p0, m0, v0)]
    fused.adamw_update(other[0], g, other[1], other[2], **hyper)
    for a, b in zip(fast, other):
        np.testing.assert_array_equal(a, b)
