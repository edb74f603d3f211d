"""Optimizers against torch.optim over several steps, fused AdamW = formula, state dicts, clipping, groups."""

import numpy as np
import pytest
import torch

import autograd as ag
from autograd import kernels, nn, optim
from autograd.nn.utils import clip_grad_norm_

RNG = np.random.default_rng(0)


def _twin_params(shapes):
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    return [nn.Parameter(ag.tensor(a)) for a in arrays], [torch.nn.Parameter(torch.tensor(a)) for a in arrays]


def _run(ours_opt, torch_opt, ours, theirs, steps=6, lr_schedule=None):
    for step in range(steps):
        grads = [RNG.standard_normal(p.shape).astype(np.float32) for p in ours]
        for p, g in zip(ours, grads, strict=False):
            p.grad = ag.tensor(g)
        for p, g in zip(theirs, grads, strict=False):
            p.grad = torch.tensor(g)
        if lr_schedule:
            optim.set_lr(ours_opt, lr_schedule[step])
            for group in torch_opt.param_groups:
                group["lr"] = lr_schedule[step]
        ours_opt.step()
        torch_opt.step()
    for a, b in zip(ours, theirs, strict=False):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_adamw_matches_torch(reference):
    ours, theirs = _twin_params([(7, 5), (5,), (3, 4, 2, 2)])

    def groups(ps):
        return [{"params": ps[:1], "weight_decay": 0.05}, {"params": ps[1:], "weight_decay": 0.0}]

    with kernels.use_reference(reference):
        _run(
            optim.AdamW(groups(ours), lr=1e-2, betas=(0.9, 0.99), eps=1e-8),
            torch.optim.AdamW(groups(theirs), lr=1e-2, betas=(0.9, 0.99), eps=1e-8),
            ours,
            theirs,
            lr_schedule=[1e-2, 2e-2, 3e-2, 2e-2, 1e-2, 5e-3],
        )


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch(nesterov):
    ours, theirs = _twin_params([(6, 3), (3,)])
    _run(
        optim.SGD(ours, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov),
        torch.optim.SGD(theirs, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov),
        ours,
        theirs,
    )


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
            for p, gi in zip(params, g, strict=False):
                p.grad = ag.tensor(gi)
            opt.step()
        return params, opt

    straight, _ = run(grads)
    half, opt = run(grads[:2])
    saved = opt.state_dict()
    resumed, _ = run(grads[2:], saved, [nn.Parameter(ag.tensor(p.numpy().copy())) for p in half])
    for a, b in zip(straight, resumed, strict=False):
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
    for p, t in zip(ours, theirs, strict=False):
        g = RNG.standard_normal(p.shape).astype(np.float32) * 3
        p.grad, t.grad = ag.tensor(g), torch.tensor(g)
    norm = clip_grad_norm_(ours, 1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert abs(norm - float(torch_norm)) < 1e-4
    for p, t in zip(ours, theirs, strict=False):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cosine_schedule_shape():
    lrs = [optim.cosine_with_warmup(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5, abs=0.02) and lrs[-1] < 0.001
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


@pytest.mark.parametrize("size", [5, 1000, 3 * (1 << 14) + 17])
@pytest.mark.parametrize("parallel_from", [1, 1 << 30])
def test_fused_adamw_serial_and_chunked_paths_equal_the_reference(monkeypatch, size, parallel_from):
    """The Numba update, serial or cut into chunks (sizes that are not a multiple of the chunk), against the
    array formula; the two Numba paths give the very same bits."""
    from autograd.kernels.cpu import adamw as fused
    from autograd.optim.adamw import adamw_update

    monkeypatch.setattr(fused, "PARALLEL_MIN_SIZE", parallel_from)
    rng = np.random.default_rng(size)
    p0, m0 = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32) * 0.1
    v0, g = rng.random(size).astype(np.float32) * 0.01, rng.standard_normal(size).astype(np.float32)
    hyper = dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, step=7)
    fast, ref = [a.copy() for a in (p0, m0, v0)], [a.copy() for a in (p0, m0, v0)]
    fused.adamw_update(fast[0], g, fast[1], fast[2], fused.adamw_hyper(**hyper))
    adamw_update(ref[0], g, ref[1], ref[2], **hyper)
    for a, b in zip(fast, ref, strict=False):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
    monkeypatch.setattr(fused, "PARALLEL_MIN_SIZE", 1 << 30 if parallel_from == 1 else 1)
    other = [a.copy() for a in (p0, m0, v0)]
    fused.adamw_update(other[0], g, other[1], other[2], fused.adamw_hyper(**hyper))
    for a, b in zip(fast, other, strict=False):
        np.testing.assert_array_equal(a, b)


# -- the flat (multi-tensor) AdamW step ------------------------------------------------------------------
FLAT_SHAPES = [(40, 30), (30,), (5, 3, 7, 7), (5,), (3 * (1 << 14) + 5,)]  # one parameter spans several tasks


def _flat_params(shapes, gap=0):
    """Parameters and gradient arrays laid side by side in two buffers, as DataParallel lays them out
    (``gap`` spare elements after the first parameter break the layout)."""
    rng = np.random.default_rng(5)
    total = sum(int(np.prod(s)) for s in shapes) + gap
    data, grad = np.zeros(total, np.float32), np.zeros(total, np.float32)
    params, grads, start = [], [], 0
    for i, shape in enumerate(shapes):
        size = int(np.prod(shape))
        p = nn.Parameter(ag.tensor(rng.standard_normal(shape).astype(np.float32)))
        view = data[start : start + size].reshape(shape)
        view[...] = p.data
        p.data = view
        params.append(p)
        grads.append(grad[start : start + size].reshape(shape))
        start += size + (gap if i == 0 else 0)
    return params, grads


def _owned_copies(params):
    return [nn.Parameter(ag.tensor(p.numpy().copy())) for p in params]


def _interleaved_groups(params):  # the decay group's parameters are not next to each other in the buffer
    return [{"params": params[0::2], "weight_decay": 0.05}, {"params": params[1::2], "weight_decay": 0.0}]


def _gradients(steps, seed):
    """Gradient values for ``steps`` steps of the FLAT_SHAPES parameters."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(np.float32) for s in FLAT_SHAPES] for _ in range(steps)]


def _adamw_steps(opt, params, grads, values, first_step=0):
    """One optimizer step per entry of ``values``: into the flat gradient arrays ``grads`` when given, else
    as new arrays. The learning rate changes from step to step."""
    for step, step_values in enumerate(values, first_step):
        optim.set_lr(opt, 1e-2 * (1 + step % 3))
        for p, g, value in zip(params, grads or [None] * len(params), step_values, strict=False):
            if g is None:
                p.grad = ag.tensor(value)
            else:
                g[...] = value
                p.grad = ag.Tensor(g)  # a new Tensor on the same array every step, as DataParallel does
        opt.step()


def test_flat_adamw_gives_the_same_bits_as_one_call_per_parameter():
    flat, grads = _flat_params(FLAT_SHAPES)
    apart = _owned_copies(flat)
    flat_opt, apart_opt = (
        optim.AdamW(_interleaved_groups(flat), lr=1e-2),
        optim.AdamW(_interleaved_groups(apart), lr=1e-2),
    )
    values = _gradients(5, seed=9)
    _adamw_steps(flat_opt, flat, grads, values)
    _adamw_steps(apart_opt, apart, None, values)
    assert flat_opt._flat is not None and apart_opt._flat is None  # each took the path under test
    for a, b in zip(flat, apart, strict=False):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    ours, theirs = flat_opt.state_dict(), apart_opt.state_dict()
    for index, state in theirs["state"].items():
        assert ours["state"][index]["step"] == state["step"] == 5
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(ours["state"][index][key], state[key])


def test_flat_adamw_resumes_exactly_from_a_state_dict():
    values = _gradients(4, seed=9)
    straight, grads = _flat_params(FLAT_SHAPES)
    _adamw_steps(optim.AdamW(_interleaved_groups(straight), lr=1e-2), straight, grads, values)

    first, grads = _flat_params(FLAT_SHAPES)
    opt = optim.AdamW(_interleaved_groups(first), lr=1e-2)
    _adamw_steps(opt, first, grads, values[:2])
    saved = opt.state_dict()
    resumed, grads = _flat_params(FLAT_SHAPES)
    for p, q in zip(resumed, first, strict=False):
        p.data[...] = q.data
    opt = optim.AdamW(_interleaved_groups(resumed), lr=1e-2)
    opt.load_state_dict(saved)  # per-parameter arrays: the flat step copies them into its buffers
    _adamw_steps(opt, resumed, grads, values[2:], first_step=2)
    assert opt._flat is not None
    for a, b in zip(straight, resumed, strict=False):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_flat_adamw_falls_back_when_the_layout_breaks():
    flat, grads = _flat_params(FLAT_SHAPES)
    apart = _owned_copies(flat)
    flat_opt, apart_opt = (
        optim.AdamW(flat, lr=1e-2, weight_decay=0.1),
        optim.AdamW(apart, lr=1e-2, weight_decay=0.1),
    )
    values = _gradients(6, seed=10)
    _adamw_steps(flat_opt, flat, grads, values[:2])
    assert flat_opt._flat is not None
    # gradients that are new arrays: one call per parameter again, from the same moments
    _adamw_steps(flat_opt, flat, None, values[2:4], first_step=2)
    # back on the flat arrays: the flat step takes over again, at the step the parameters have reached
    _adamw_steps(flat_opt, flat, grads, values[4:], first_step=4)
    assert flat_opt._flat is not None
    _adamw_steps(apart_opt, apart, None, values)
    for a, b in zip(flat, apart, strict=False):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_flat_layout_is_found_only_for_parameters_side_by_side():
    from autograd.optim.flat import FlatLayout

    def with_grads(params, grads):
        for p, g in zip(params, grads, strict=False):
            p.grad = ag.Tensor(g)
        return params

    params, grads = _flat_params(FLAT_SHAPES)
    layout = FlatLayout.find(with_grads(params[::-1], grads[::-1]))  # any order: found in buffer order
    assert layout is not None and layout.params == params
    assert list(layout.bounds) == [0] + list(np.cumsum([int(np.prod(s)) for s in FLAT_SHAPES]))
    assert np.shares_memory(layout.data, params[-1].data) and layout.data.size == layout.bounds[-1]
    assert layout.still_holds()
    params[1].grad = ag.tensor(grads[1].copy())
    assert not layout.still_holds()

    gapped, gapped_grads = _flat_params(FLAT_SHAPES, gap=3)
    assert FlatLayout.find(with_grads(gapped, gapped_grads)) is None
    owned = _owned_copies(params)
    assert FlatLayout.find(with_grads(owned, [np.zeros(p.shape, np.float32) for p in owned])) is None
    params, grads = _flat_params(FLAT_SHAPES)
    params[2].grad = None
    assert FlatLayout.find(params) is None
    shifted = with_grads(params, grads[:1] + [np.zeros(p.shape, np.float32) for p in params[1:]])
    assert FlatLayout.find(shifted) is None  # gradients not at the parameters' offsets


def test_consecutive_views_lay_out_what_flat_layout_finds():
    from autograd.optim.flat import FlatLayout, consecutive_views

    total = sum(int(np.prod(s)) for s in FLAT_SHAPES)
    data, grad = np.arange(total, dtype=np.float32), np.zeros(total, np.float32)
    views = consecutive_views(data, FLAT_SHAPES)
    assert [v.shape for v in views] == [tuple(s) for s in FLAT_SHAPES]
    np.testing.assert_array_equal(np.concatenate([v.reshape(-1) for v in views]), data)  # in order, no gaps
    params = []
    for view, grad_view in zip(views, consecutive_views(grad, FLAT_SHAPES), strict=False):
        p = nn.Parameter(ag.tensor(view.copy()))
        p.data, p.grad = view, ag.Tensor(grad_view)
        params.append(p)
    assert FlatLayout.find(params).params == params
    with pytest.raises(ValueError, match=f"need {total} elements, the buffer has {total - 1}"):
        consecutive_views(data[:-1], FLAT_SHAPES)


def test_segments_kernel_equals_one_call_per_segment():
    from autograd.kernels.cpu import adamw as fused

    rng = np.random.default_rng(3)
    sizes = [7, 1 << 14, 3 * (1 << 14) + 17, 1]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    p, m, g = (rng.standard_normal(bounds[-1]).astype(np.float32) for _ in range(3))
    v = rng.random(bounds[-1]).astype(np.float32)
    per_segment = [
        fused.adamw_hyper(1e-3 * (s + 1), 0.9, 0.99 + 0.001 * s, 1e-8, 0.05 * (s % 2), 3)
        for s in range(len(sizes))
    ]
    flat = [a.copy() for a in (p, m, v)]
    fused.adamw_update_segments(
        flat[0],
        g,
        flat[1],
        flat[2],
        fused.segment_tasks(bounds, chunk=1000),
        np.ascontiguousarray(np.array(per_segment).T),
    )
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
        one = [x[a:b].copy() for x in (p, m, v)]
        numbers = fused.adamw_hyper(1e-3 * (s + 1), 0.9, 0.99 + 0.001 * s, 1e-8, 0.05 * (s % 2), 3)
        fused.adamw_update(one[0], g[a:b], one[1], one[2], numbers)
        for x, y in zip(flat, one, strict=False):
            np.testing.assert_array_equal(x[a:b], y)
    start, stop, segment = fused.segment_tasks(bounds, chunk=1000)
    assert (stop - start).max() <= 1000 and start[0] == 0 and stop[-1] == bounds[-1]
    assert np.array_equal(start[1:], stop[:-1]) and np.array_equal(np.bincount(segment, stop - start), sizes)
