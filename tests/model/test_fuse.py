"""``ConvNeXt.fuse()``: the same modules and parameters, the fused ops' numbers, and nothing else changed."""

import copy

import numpy as np
import pytest

import autograd as ag
import tinyconvnext
from autograd.nn import functional as F
from tinyconvnext.model import Block, FusedBlock

OPTIONS = [
    dict(),
    dict(stem_type="overlap_act", norm_layer="batch"),
    dict(stem_type="deep", norm_layer="layer", stem_norm_layer="batch"),
]


def _small(seed=0, **options):
    ag.manual_seed(seed)
    return tinyconvnext.create_model(
        "convnext_atto", num_classes=5, depths=(1, 2), dims=(8, 16), drop_path_rate=0.3, **options
    )


def _forward_backward(model, images, seed):
    """Logits and every parameter's gradient of sum(logits * r), after ag.manual_seed(seed) (drop path)."""
    ag.manual_seed(seed)
    logits = model(images)
    weights = np.random.default_rng(7).standard_normal(logits.shape).astype(logits.dtype)
    model.zero_grad()
    (logits * ag.tensor(weights)).sum().backward()
    return logits.numpy(), {name: p.grad.numpy() for name, p in model.named_parameters()}


def test_fused_block_computes_the_fused_ops_bit_for_bit():
    # The fused block's numbers are those of Block.forward before fuse() existed: the Linear+GELU and the
    # residual add as one op each, in float32, forward and backward, with drop path in training mode.
    ag.manual_seed(0)
    block = Block(16, drop_path=0.4, layer_scale_init_value=0.5)
    fused = FusedBlock(block)
    x_data = np.random.default_rng(0).standard_normal((4, 6, 6, 16)).astype(np.float32)
    grad = np.random.default_rng(1).standard_normal(x_data.shape).astype(np.float32)
    results = []
    for run in ("fused", "expression"):
        x = ag.tensor(x_data, requires_grad=True)
        ag.manual_seed(3)
        if run == "fused":
            y = fused(x)
        else:
            h = block.norm(block.dwconv(x))
            h = F.linear_gelu(h, block.pwconv1.weight, block.pwconv1.bias, block.act.approximate)
            y = F.residual_add(x, block.pwconv2(h), block.gamma, 0.4, True)
        block.zero_grad()
        (y * ag.tensor(grad)).sum().backward()
        results.append([y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in block.parameters()])
    for fused_value, expected in zip(*results, strict=True):
        np.testing.assert_array_equal(fused_value, expected)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()) or "paper")
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_fused_model_equals_the_plain_one_in_float64(options, training):
    plain = _small(**options).to(dtype=np.float64)
    fused = copy.deepcopy(plain).fuse()
    plain.train(training), fused.train(training)
    images = np.random.default_rng(2).standard_normal((4, 3, 16, 16))
    logits, grads = _forward_backward(plain, images, seed=11)
    fused_logits, fused_grads = _forward_backward(fused, images, seed=11)
    np.testing.assert_allclose(fused_logits, logits, rtol=1e-12, atol=1e-12)
    assert fused_grads.keys() == grads.keys()
    for name, g in grads.items():
        np.testing.assert_allclose(fused_grads[name], g, rtol=1e-10, atol=1e-12, err_msg=name)


def test_fuse_keeps_the_modules_parameters_and_state_dict_and_is_idempotent():
    model = _small(stem_type="deep", norm_layer="batch")
    before = model.state_dict()
    blocks = [block for stage in model.stages for block in stage]
    parameters = dict(model.named_parameters())
    assert model.fuse() is model
    fused = [block for stage in model.stages for block in stage]
    assert all(type(b) is FusedBlock for b in fused)
    for block, fused_block in zip(blocks, fused, strict=True):
        for name in ("dwconv", "norm", "pwconv1", "act", "pwconv2", "gamma", "drop_path"):
            assert getattr(fused_block, name) is getattr(block, name)
    assert list(model.named_parameters()) == list(parameters.items())  # same objects, same order
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    model.fuse()
    assert [block for stage in model.stages for block in stage] == fused


def test_state_dicts_load_between_fused_and_plain_models():
    fused = _small(seed=1).fuse()
    plain = _small(seed=2)
    plain.load_state_dict(fused.state_dict())
    assert all(np.array_equal(plain.state_dict()[k], v) for k, v in fused.state_dict().items())
    other = _small(seed=3).fuse()
    other.load_state_dict(_small(seed=4).state_dict())
    assert all(np.array_equal(other.state_dict()[k], v) for k, v in _small(seed=4).state_dict().items())


def test_drop_path_rate_and_training_flag_carry_over():
    model = _small().eval().fuse()
    blocks = [block for stage in model.stages for block in stage]
    np.testing.assert_allclose([b.drop_rate for b in blocks], np.linspace(0, 0.3, 3))
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(b.training and b.drop_path.training for b in blocks)
    blocks[-1].drop_path.p = 0.5  # the fused block reads the rate from its drop path, as Block does
    assert blocks[-1].drop_rate == 0.5


def test_every_model_create_model_builds_can_be_fused():
    resnet = tinyconvnext.create_model("resnet18d", num_classes=10, depths=(1, 1, 1, 1))
    before = resnet.state_dict()
    assert resnet.fuse() is resnet
    assert list(resnet.state_dict()) == list(before)
