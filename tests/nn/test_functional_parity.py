"""autograd.nn.functional against torch.nn.functional in float32: forward values and every gradient. Our
functions run on every device (the "cuda" runs are skipped without CuPy and a GPU); the results are
compared on the CPU."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import autograd as ag
from autograd.nn import functional as F

RNG = np.random.default_rng(1)


def _run_both(ours, theirs, arrays, device, grad_seed=0, rtol=1e-4, atol=1e-5, needs_grad=None):
    """ours on tensors on ``device`` and theirs on torch tensors, from the same float32 arrays: the outputs
    and the gradients of the inputs match."""
    needs_grad = needs_grad or [True] * len(arrays)
    our_in = [ag.tensor(a, device=device, requires_grad=g) for a, g in zip(arrays, needs_grad, strict=False)]
    torch_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, needs_grad, strict=False)]
    our_out, torch_out = ours(*our_in), theirs(*torch_in)
    assert our_out.device == device
    assert our_out.shape == tuple(torch_out.shape)
    np.testing.assert_allclose(our_out.numpy(), torch_out.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(grad_seed).standard_normal(our_out.shape).astype(np.float32)
    our_out.backward(ag.tensor(upstream, device=device))
    torch_out.backward(torch.tensor(upstream))
    for i, (o, t) in enumerate(zip(our_in, torch_in, strict=False)):
        if needs_grad[i]:
            np.testing.assert_allclose(
                o.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {i}"
            )


def _f32(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


CONV_CASES = [
    # x shape, weight shape, stride, padding, groups, bias
    ((2, 3, 9, 9), (4, 3, 3, 3), 1, 1, 1, True),
    ((2, 4, 8, 7), (6, 2, 3, 2), (2, 1), (1, 0), 2, False),
    ((1, 3, 10, 10), (5, 3, 5, 5), 2, 2, 1, True),
    ((2, 3, 32, 32), (16, 3, 4, 4), 4, 0, 1, True),  # patchify stem
    ((2, 8, 9, 9), (16, 8, 2, 2), 2, 0, 1, True),  # downsampling, odd size dropped
    ((4, 16, 16, 16), (16, 1, 7, 7), 1, 3, 16, True),  # ConvNeXt's depthwise 7x7
    ((2, 6, 11, 13), (6, 1, 3, 3), 2, 1, 6, False),  # depthwise, stride 2
    ((2, 4, 8, 8), (8, 1, 3, 3), 1, 1, 4, True),  # depthwise multiplier 2: general path
    ((2, 6, 7, 9), (8, 6, 3, 3), 1, (1, 0), 1, False),  # stride 1: dx by the flipped-kernel conv
    ((2, 4, 6, 5), (6, 2, 1, 3), 1, (1, 2), 2, True),  # padding wider than K - 1: dx by col2im
]


@pytest.mark.parametrize("xs, ws, stride, padding, groups, bias", CONV_CASES)
def test_conv2d(xs, ws, stride, padding, groups, bias, device):
    arrays = [_f32(*xs), _f32(*ws)] + ([_f32(ws[0])] if bias else [])
    _run_both(
        lambda *t: F.conv2d(*t, stride=stride, padding=padding, groups=groups),
        lambda *t: TF.conv2d(*t, stride=stride, padding=padding, groups=groups),
        arrays,
        device=device,
    )


def test_depthwise_7x7_to_1e4_relative(device):
    x, w, b = _f32(8, 32, 14, 14), _f32(32, 1, 7, 7), _f32(32)
    _run_both(
        lambda *t: F.conv2d(*t, padding=3, groups=32),
        lambda *t: TF.conv2d(*t, padding=3, groups=32),
        [x, w, b],
        rtol=1e-4,
        atol=1e-5,
        device=device,
    )


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_linear(lead, device):
    _run_both(F.linear, TF.linear, [_f32(*lead, 7), _f32(4, 7), _f32(4)], device=device)
    _run_both(F.linear, TF.linear, [_f32(*lead, 7), _f32(4, 7)], device=device)


@pytest.mark.parametrize(
    "shape, normalized", [((6, 10), (10,)), ((2, 3, 4, 5), (4, 5)), ((4, 7, 7, 96), (96,))]
)
def test_layer_norm(shape, normalized, device):
    _run_both(
        lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=1e-6),
        lambda x, w, b: TF.layer_norm(x, normalized, w, b, eps=1e-6),
        [_f32(*shape, low=-3, high=3), _f32(*normalized), _f32(*normalized)],
        device=device,
    )
    _run_both(
        lambda x: F.layer_norm(x, normalized),
        lambda x: TF.layer_norm(x, normalized),
        [_f32(*shape)],
        device=device,
    )


def test_layer_norm_channels_first_matches_permuted_torch_layer_norm(device):
    def theirs(x, w, b):
        return TF.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w, b, eps=1e-6).permute(0, 3, 1, 2)

    _run_both(
        lambda x, w, b: F.layer_norm_channels_first(x, w, b, eps=1e-6),
        theirs,
        [_f32(3, 24, 5, 7, low=-3, high=3), _f32(24), _f32(24)],
        device=device,
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate, device):
    _run_both(
        lambda x: F.gelu(x, approximate=approximate),
        lambda x: TF.gelu(x, approximate=approximate),
        [_f32(33, 65, low=-6, high=6)],
        rtol=1e-5,
        atol=1e-5,
        device=device,
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_linear_gelu(approximate, device):
    _run_both(
        lambda x, w, b: F.linear_gelu(x, w, b, approximate),
        lambda x, w, b: TF.gelu(TF.linear(x, w, b), approximate=approximate),
        [_f32(4, 6, 6, 48, low=-2, high=2), _f32(192, 48), _f32(192)],
        device=device,
    )


@pytest.mark.parametrize("drop_prob", [0.0, 0.5])
def test_residual_add_is_shortcut_plus_drop_path_of_layer_scale(drop_prob, device):
    """timm's block end, ``shortcut + drop_path(gamma * x)``, written out in torch with the mask we draw."""
    shape = (8, 5, 6, 32)
    keep = np.random.default_rng(3).random((shape[0], 1, 1, 1)) < 1 - drop_prob  # what Generator(3) draws
    factor = torch.tensor(keep.astype(np.float32) / np.float32(1 - drop_prob))
    _run_both(
        lambda s, x, g: F.residual_add(s, x, g, drop_prob, training=True, generator=ag.Generator(3)),
        lambda s, x, g: s + (g * x) * factor,
        [_f32(*shape), _f32(*shape), _f32(shape[-1])],
        device=device,
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_labels(smoothing, reduction, device):
    labels = RNG.integers(0, 10, size=16)
    our_labels = ag.tensor(labels, device=device)
    _run_both(
        lambda z: F.cross_entropy(z, our_labels, label_smoothing=smoothing, reduction=reduction),
        lambda z: TF.cross_entropy(z, torch.tensor(labels), label_smoothing=smoothing, reduction=reduction),
        [_f32(16, 10, low=-5, high=5)],
        device=device,
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_soft_targets(smoothing, device):
    soft = RNG.random((8, 5)).astype(np.float32)
    soft /= soft.sum(axis=1, keepdims=True)
    _run_both(
        lambda z, t: F.cross_entropy(z, t, label_smoothing=smoothing),
        lambda z, t: TF.cross_entropy(z, t, label_smoothing=smoothing),
        [_f32(8, 5, low=-3, high=3), soft],
        device=device,
    )


def test_cross_entropy_ignore_index(device):
    labels = np.array([1, -100, 3, 2])
    our_labels = ag.tensor(labels, device=device)
    _run_both(
        lambda z: F.cross_entropy(z, our_labels),
        lambda z: TF.cross_entropy(z, torch.tensor(labels)),
        [_f32(4, 5)],
        device=device,
    )


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))])
def test_pooling(kernel, stride, padding, device):
    x = RNG.permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8).astype(np.float32) / 10  # no ties
    _run_both(
        lambda t: F.avg_pool2d(t, kernel, stride, padding),
        lambda t: TF.avg_pool2d(t, kernel, stride, padding),
        [x],
        device=device,
    )
    _run_both(
        lambda t: F.max_pool2d(t, kernel, stride, padding),
        lambda t: TF.max_pool2d(t, kernel, stride, padding),
        [x],
        device=device,
    )


@pytest.mark.parametrize("size", [1, (2, 3), 4, (5, 7)])
def test_adaptive_avg_pool(size, device):
    _run_both(
        lambda t: F.adaptive_avg_pool2d(t, size),
        lambda t: TF.adaptive_avg_pool2d(t, size),
        [_f32(2, 3, 9, 7)],
        device=device,
    )


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_and_running_statistics(training, device):
    x, w, b = _f32(6, 4, 5, 5, low=-2, high=3), _f32(4), _f32(4)
    ours_stats = [ag.tensor(_f32(4), device=device), ag.tensor(_f32(4, low=0.5, high=1.5), device=device)]
    torch_stats = [torch.tensor(s.numpy().copy()) for s in ours_stats]
    _run_both(
        lambda *t: F.batch_norm(t[0], *ours_stats, t[1], t[2], training=training, momentum=0.2),
        lambda *t: TF.batch_norm(t[0], *torch_stats, t[1], t[2], training=training, momentum=0.2),
        [x, w, b],
        device=device,
    )
    for ours, theirs in zip(ours_stats, torch_stats, strict=False):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_channels_last_is_batch_norm_of_the_nchw_tensor(training, device):
    x, w, b = _f32(6, 5, 5, 4, low=-2, high=3), _f32(4), _f32(4)  # (N, H, W, C)
    ours_stats = [ag.tensor(_f32(4), device=device), ag.tensor(_f32(4, low=0.5, high=1.5), device=device)]
    torch_stats = [torch.tensor(s.numpy().copy()) for s in ours_stats]
    _run_both(
        lambda *t: F.batch_norm(
            t[0], *ours_stats, t[1], t[2], training=training, momentum=0.2, channels_last=True
        ),
        lambda *t: TF.batch_norm(
            t[0].permute(0, 3, 1, 2), *torch_stats, t[1], t[2], training=training, momentum=0.2
        ).permute(0, 2, 3, 1),
        [x, w, b],
        device=device,
    )
    for ours, theirs in zip(ours_stats, torch_stats, strict=False):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_keeps_expectation_and_masks_gradients(device):
    x = ag.ones(2000, 50, device=device, requires_grad=True)
    y = F.dropout(x, 0.3, training=True, generator=ag.Generator(0))
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)
    assert F.dropout(x, 0.3, training=False) is x


def test_drop_path_drops_whole_samples(device):
    x = ag.ones(4000, 3, 2, 2, device=device, requires_grad=True)
    y = F.drop_path(x, 0.25, training=True, generator=ag.Generator(1)).numpy()
    per_sample = y.reshape(4000, -1)
    assert ((per_sample == 0).all(axis=1) | (per_sample == 1 / 0.75).all(axis=1)).all()
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.03
    assert F.drop_path(x, 0.25, training=False) is x


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_residual_add_and_drop_path_draw_the_same_numbers(p, device):
    """The fused block end and ``F.drop_path`` take the same factors from the generator and leave it in the
    same state, also at p = 1, where every sample is dropped and nothing is drawn."""
    shape = (64, 3, 3, 8)
    shortcut, x = (
        ag.tensor(_f32(*shape), device=device),
        ag.tensor(_f32(*shape), device=device, requires_grad=True),
    )
    g_fused, g_plain = ag.Generator(7), ag.Generator(7)
    fused = F.residual_add(shortcut, x, drop_prob=p, training=True, generator=g_fused)
    plain = shortcut + F.drop_path(x, p, training=True, generator=g_plain)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)
    assert g_fused.get_state() == g_plain.get_state()  # the streams go on alike
    assert (g_fused.get_state() == ag.Generator(7).get_state()) == (p == 1.0)  # p = 1 draws nothing
    if p == 1.0:
        np.testing.assert_array_equal(fused.numpy(), shortcut.numpy())
        fused.sum().backward()
        assert not x.grad.numpy().any()


@pytest.mark.parametrize("shape, k, stride, padding", [((4, 13, 11, 16), 7, 1, 3), ((2, 9, 8, 6), 3, 2, 1)])
def test_depthwise_channels_last_matches_torch(shape, k, stride, padding, device):
    c = shape[3]
    _run_both(
        lambda x, w, b: F.depthwise_conv2d_channels_last(x, w, b, stride=stride, padding=padding),
        lambda x, w, b: TF.conv2d(
            x.permute(0, 3, 1, 2), w, b, stride=stride, padding=padding, groups=c
        ).permute(0, 2, 3, 1),
        [_f32(*shape), _f32(c, 1, k, k), _f32(c)],
        device=device,
    )


@pytest.mark.parametrize("shape, o, k", [((2, 32, 32, 3), 16, 4), ((2, 9, 7, 8), 12, 2)])
def test_patchify_channels_last_matches_torch(shape, o, k, device):
    _run_both(
        lambda x, w, b: F.patchify_conv2d_channels_last(x, w, b),
        lambda x, w, b: TF.conv2d(x.permute(0, 3, 1, 2), w, b, stride=k).permute(0, 2, 3, 1),
        [_f32(*shape), _f32(o, shape[3], k, k), _f32(o)],
        device=device,
    )
