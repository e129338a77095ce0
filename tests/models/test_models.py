"""Model zoo: registry, architectures (IBM / facebookresearch definitions), weight import, transfer."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from synapt_fast.models import (CheckpointError, CheckpointMismatch, create_model, extract_features, list_models,
                                load_checkpoint, load_features, load_imagenet, prepare_transfer,
                                save_features, trainable_parameters)
from synapt_fast.models.common import LAYOUTS



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from more threads, and on a shared 2-core machine a second
    OpenMP thread waiting for a busy core made steps ~250x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = list_models("tiny")
CNN_TINY = [n for n in TINY if not n.startswith("timesformer")]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def clip_batch(model, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(model.input_shape(n), generator=g)


def randomize_norm_stats(model: nn.Module, seed: int = 0) -> None:
    """Give every norm layer non-trivial affine weights and running statistics, so equality tests
    cannot pass by the accident of identity BatchNorms."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


# --- registry -----------------------------------------------------------------------------------

def test_registry_lists_every_family_in_full_and_tiny_size():
    names = list_models()
    for family in ("tsn", "i3d", "r2plus1d", "timesformer"):
        assert any(n.startswith(family) and "tiny" not in n for n in names), family
        assert any(n.startswith(family) and "tiny" in n for n in names), family


def test_unknown_model_name_is_an_error_listing_known_models():
    with pytest.raises(KeyError, match="i3d_r50") as err:
        create_model("i3d_r5O", num_classes=10)
    assert "unknown model 'i3d_r5O'" in str(err.value)


# --- every tiny model: forward, backward, contract ----------------------------------------------

@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).train()
    assert model.input_layout in LAYOUTS
    x = clip_batch(model)
    logits = model(x)
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([1, 3])).backward()
    no_grad = [k for k, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    # TimeSformer's zero-initialised temporal_fc (blocks after the first) legitimately passes zero
    # gradient to its block's temporal attention and norm at step 0; all else must get signal.
    def silent_by_design(k: str) -> bool:
        return k.startswith("blocks.") and not k.startswith("blocks.0.") and (
            ".temporal_attn." in k or ".temporal_norm1." in k)

    zero = [k for k, p in model.named_parameters() if not p.grad.abs().sum() and not silent_by_design(k)]
    assert not zero, f"parameters with all-zero gradient: {zero}"


@pytest.mark.parametrize("name", TINY)
def test_eval_forward_equals_head_of_features(name):
    """The contract feature caching relies on: in eval mode, model(x) == forward_head(forward_features(x))."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).eval()
    randomize_norm_stats(model)
    x = clip_batch(model)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features)
        torch.testing.assert_close(model.forward_head(feats), model(x), rtol=1e-5, atol=1e-6)


def test_layouts_declared_per_family():
    assert create_model("tsn_tiny", num_classes=2).input_layout == "NTCHW"
    assert create_model("timesformer_tiny", num_classes=2).input_layout == "NTCHW"
    assert create_model("i3d_tiny", num_classes=2).input_layout == "NCTHW"
    assert create_model("r2plus1d_tiny", num_classes=2).input_layout == "NCTHW"
    assert create_model("i3d_tiny", num_classes=2).input_shape(3) == (3, 3, 4, 32, 32)
    assert create_model("tsn_tiny", num_classes=2).input_shape(3) == (3, 4, 3, 32, 32)


def test_tsn_accepts_ibm_flattened_layout():
    """IBM feeds TSN (N, T*C, H, W); our NTCHW flattened the same way gives the same logits."""
    model = create_model("tsn_tiny", num_classes=4).eval()
    x = clip_batch(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.flatten(1, 2)))


def test_temporal_stride_and_pooling_variants_change_the_time_axis_only():
    torch.manual_seed(0)
    for name in ("i3d_tiny", "i3d_tiny_nts", "tsn_tiny", "tsn_tiny_tpool_max"):
        model = create_model(name, num_classes=3, num_frames=8).eval()
        if hasattr(model, "_time_features"):
            t = model._time_features(clip_batch(model, 1)).shape[1]
            assert t == (1 if model.temporal_stride else 8), name
        else:
            t = model._frame_features(clip_batch(model, 1))[0].shape[1]
            assert t == (1 if model.temporal_pool else 8), name  # 8 -> 4 -> 2 -> 1


def test_timesformer_is_invariant_to_frame_order_without_time_embedding():
    """Divided attention has no notion of order except `time_embed`: with it zeroed, shuffling
    frames must not change the output. A wrong (h w t) <-> (t h w) token rearrangement breaks this."""
    torch.manual_seed(0)
    model = create_model("timesformer_tiny", num_classes=3).eval()
    for blk in model.blocks:  # give every temporal branch a non-zero effect
        nn.init.normal_(blk.temporal_fc.weight, std=0.2)
    x = clip_batch(model)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        model.time_embed.zero_()
        torch.testing.assert_close(model(x), model(x[:, perm]), rtol=1e-4, atol=1e-5)
        model.time_embed.normal_(std=1.0)  # control: with a time embedding, order matters
        assert not torch.allclose(model(x), model(x[:, perm]), atol=1e-4)


# --- parameter counts of the full-size models ----------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("tsn_r50", 23_686_295),
    ("i3d_r50", 46_339_607),
    ("i3d_r50_nts", 46_339_607),
    ("r2plus1d_r50", 27_485_079),
    ("tsn_r50_tpool_max", 23_686_295),
])
def test_full_cnn_parameter_counts_match_published(name, expected):
    assert n_params(create_model(name, num_classes=87)) == expected


def timesformer_param_count(num_classes, dim=768, depth=12, patch=16, img=224, frames=8, mlp=4):
    """TimeSformer-B/16 (divided space-time) counted from the reference definition."""
    linear = lambda i, o: i * o + o  # noqa: E731
    norm = 2 * dim
    attn = linear(dim, 3 * dim) + linear(dim, dim)  # qkv (bias) + proj
    block = (norm + attn                            # norm1 + spatial attention
             + norm + attn + linear(dim, dim)       # temporal_norm1 + temporal_attn + temporal_fc
             + norm + linear(dim, mlp * dim) + linear(mlp * dim, dim))  # norm2 + mlp
    embed = linear(3 * patch * patch, dim) + dim + ((img // patch) ** 2 + 1) * dim + frames * dim
    return embed + depth * block + norm + linear(dim, num_classes)


def test_timesformer_parameter_count_matches_reference_definition():
    # Counted from the definition in the reference vit.py (the TimeSformer paper's table rounds
    # its model to "121.4M"); 121,566,352 with the reference's 400-class Kinetics head.
    assert timesformer_param_count(400) == 121_566_352
    model = create_model("timesformer_b16", num_classes=87)
    assert n_params(model) == timesformer_param_count(87) == 121_325_655
    assert model.image_size == 224 and model.num_frames == 8 and model.patch_size == 16


# --- IBM key naming, checkpoints ------------------------------------------------------------------

def ibm_resnet50_keys(r2plus1d: bool) -> set[str]:
    """State-dict keys of IBM's i3d_resnet / s3d_resnet depth 50, built from its naming rules."""
    bn = lambda p: {f"{p}.{s}" for s in ("weight", "bias", "running_mean", "running_var",  # noqa: E731
                                          "num_batches_tracked")}
    keys = {"conv1.weight", "fc.weight", "fc.bias"} | bn("bn1")
    for i, blocks in enumerate((3, 4, 6, 3), start=1):
        for j in range(blocks):
            p = f"layer{i}.{j}"
            convs = ["conv1", "conv2", "conv3"] + (["conv2_t"] if r2plus1d else [])
            for c in convs:
                keys |= {f"{p}.{c}.weight"} | bn(f"{p}.{c.replace('conv', 'bn')}")
        keys |= {f"layer{i}.0.downsample.0.weight"} | bn(f"layer{i}.0.downsample.1")
    return keys


def test_state_dict_keys_and_shapes_follow_ibm_naming():
    i3d = create_model("i3d_r50", num_classes=87).state_dict()
    r21 = create_model("r2plus1d_r50", num_classes=87).state_dict()
    tsn = create_model("tsn_r50", num_classes=87).state_dict()
    assert set(i3d) == ibm_resnet50_keys(r2plus1d=False)
    assert set(r21) == ibm_resnet50_keys(r2plus1d=True)
    assert set(tsn) == set(i3d)  # the 2D ResNet has the same names, 4D kernels
    assert i3d["conv1.weight"].shape == (64, 3, 3, 7, 7)
    assert i3d["layer2.0.conv2.weight"].shape == (128, 128, 3, 3, 3)
    assert r21["layer2.0.conv2.weight"].shape == (128, 128, 1, 3, 3)
    assert r21["layer2.0.conv2_t.weight"].shape == (128, 128, 3, 1, 1)
    assert i3d["layer3.0.downsample.0.weight"].shape == (1024, 512, 1, 1, 1)
    assert tsn["layer1.0.conv2.weight"].shape == (64, 64, 3, 3)
    assert i3d["fc.weight"].shape == (87, 2048)


def ibm_checkpoint(model, prefix: str) -> dict:
    """A checkpoint as IBM's train.py writes it (DataParallel adds `module.`)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return {"epoch": 3, "arch": "synthetic-rgb-test", "best_top1": 12.5,
            "state_dict": {prefix + k: v for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(), "scheduler": {"last_epoch": 3}}


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("name", ["tsn_tiny", "i3d_tiny", "r2plus1d_tiny", "tsn_tiny_tpool_max"])
def test_ibm_checkpoint_round_trip(tmp_path, name, prefix):
    torch.manual_seed(1)
    src = create_model(name, num_classes=150).eval()
    randomize_norm_stats(src)
    path = tmp_path / "model_best.pth.tar"
    torch.save(ibm_checkpoint(src, prefix), path)

    same = create_model(name, num_classes=150).eval()
    report = load_checkpoint(same, path)
    assert not report.missing and not report.unexpected and not report.classifier_replaced
    x = clip_batch(src)
    with torch.no_grad():
        torch.testing.assert_close(same(x), src(x), rtol=0, atol=0)

    down = create_model(name, num_classes=101)  # downstream task: new 101-way classifier
    head_before = down.fc.weight.clone()
    report = load_checkpoint(down, path)
    assert report.classifier_replaced and not report.missing
    assert torch.equal(down.fc.weight, head_before)
    for k, v in src.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(down.state_dict()[k], v), k


@pytest.mark.parametrize("prefix", ["model.", "module.model."])
def test_facebookresearch_timesformer_checkpoint_round_trip(tmp_path, prefix):
    torch.manual_seed(2)
    src = create_model("timesformer_tiny", num_classes=400).eval()
    path = tmp_path / "TimeSformer_divST.pyth"
    torch.save({"model_state": {prefix + k: v for k, v in src.state_dict().items()}, "epoch": 15}, path)
    dst = create_model("timesformer_tiny", num_classes=400).eval()
    report = load_checkpoint(dst, path)
    assert report.match_fraction == 1.0 and not report.unexpected
    x = clip_batch(src)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    assert load_checkpoint(create_model("timesformer_tiny", num_classes=51), path).classifier_replaced


def test_checkpoint_matching_nothing_is_refused(tmp_path):
    src = create_model("i3d_tiny", num_classes=10)
    path = tmp_path / "ckpt.pth"
    # The IBM pitfall: DataParallel prefix on only some keys means nothing lines up.
    sd = {f"backbone.{k}": v for k, v in src.state_dict().items()}
    sd["fc.weight"] = src.fc.weight.detach()
    torch.save({"state_dict": sd}, path)
    dst = create_model("i3d_tiny", num_classes=10)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match="refusing"):
        load_checkpoint(dst, path)
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())  # untouched


@pytest.mark.parametrize("arch, model, other", [
    # IBM `arch` strings as its train.py writes them: <dataset>-<modality>-<network>-f<frames>-...
    ("kinetics400-rgb-i3d-resnet-50-f8-cosine-bs64-e100", "i3d_tiny", "i3d_tiny_nts"),
    ("synthetic150-rgb-i3d-resnet-50-ts-f8-cosine-bs64-e100", "i3d_tiny_nts", "i3d_tiny"),
    ("synthetic150-rgb-resnet-50-ts-max-f8-cosine-bs64-e100", "tsn_tiny", "tsn_tiny_tpool_max"),
    ("synthetic150-rgb-resnet-50-f8-cosine-bs64-e100", "tsn_tiny_tpool_max", "tsn_tiny"),
    ("kinetics150-rgb-s3d-resnet-50-dw-t-conv-ts-f8", "r2plus1d_tiny", "r2plus1d_tiny_dw"),
    ("i3d_tiny_nts", "i3d_tiny", "i3d_tiny_nts"),  # ours: the registered name
])
def test_checkpoint_of_another_temporal_variant_is_refused(tmp_path, arch, model, other):
    """Same keys, same shapes, other logits: refused naming both variants, and the right model loads it."""
    torch.manual_seed(4)
    src = create_model(other, num_classes=10).eval()
    path = tmp_path / "model_best.pth.tar"
    torch.save(dict(ibm_checkpoint(src, "module."), arch=arch), path)
    wrong = create_model(model, num_classes=10)
    assert set(wrong.state_dict()) == set(src.state_dict())  # why the key checks cannot catch it
    before = {k: v.clone() for k, v in wrong.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match=rf"{path}: trained as .*{arch}.*but the model is .*{other}"):
        load_checkpoint(wrong, path)
    assert all(torch.equal(before[k], v) for k, v in wrong.state_dict().items())  # untouched
    right = create_model(other, num_classes=10).eval()
    assert not load_checkpoint(right, path).missing
    x = clip_batch(src)
    with torch.no_grad():
        torch.testing.assert_close(right(x), src(x), rtol=0, atol=0)


def test_timesformer_checkpoint_of_another_attention_is_refused(tmp_path):
    src = create_model("timesformer_tiny", num_classes=5)
    sd = {f"model.{k}": v for k, v in src.state_dict().items()}
    cfg = "MODEL:\n  ARCH: vit\nTIMESFORMER:\n  ATTENTION_TYPE: {}\n  PRETRAINED_MODEL: ''\n"
    path = tmp_path / "TimeSformer_jointST.pyth"
    torch.save({"model_state": sd, "epoch": 15, "cfg": cfg.format("joint_space_time")}, path)
    with pytest.raises(CheckpointMismatch, match="joint_space_time.*divided_space_time"):
        load_checkpoint(create_model("timesformer_tiny", num_classes=5), path)
    torch.save({"model_state": sd, "epoch": 15, "cfg": cfg.format("divided_space_time")}, path)
    assert load_checkpoint(create_model("timesformer_tiny", num_classes=5), path).match_fraction == 1.0


def test_empty_or_cut_checkpoint_is_an_error_naming_the_file(tmp_path):
    model = create_model("tsn_tiny", num_classes=3)
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"^{empty}: empty file"):
        load_checkpoint(model, empty)
    full = tmp_path / "full.pth.tar"
    torch.save({"state_dict": model.state_dict()}, full)
    cut = tmp_path / "cut.pth.tar"
    cut.write_bytes(full.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=rf"^{cut}: not a readable checkpoint"):
        load_checkpoint(model, cut)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(model, tmp_path / "missing.pth.tar")


def test_checkpoint_from_another_architecture_is_refused():
    i3d = create_model("i3d_tiny", num_classes=10)
    with pytest.raises(CheckpointMismatch, match="shape mismatch"):
        load_checkpoint(create_model("i3d_tiny", num_classes=10, width=16), i3d.state_dict())
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(create_model("timesformer_tiny", num_classes=10), i3d.state_dict())


# --- ImageNet import and inflation ------------------------------------------------------------------

def imagenet_like_resnet(seed: int = 3) -> dict:
    """A torchvision-format 2D ResNet state dict (tiny width) with a 1000-way fc."""
    torch.manual_seed(seed)
    model = create_model("tsn_tiny", num_classes=1000)
    randomize_norm_stats(model, seed)
    return {k: v for k, v in model.state_dict().items()}


def test_imagenet_resnet_into_tsn_drops_the_imagenet_head():
    sd = imagenet_like_resnet()
    model = create_model("tsn_tiny", num_classes=1000)
    head = model.fc.weight.clone()
    report = load_imagenet(model, sd)
    assert report.classifier_replaced and not report.missing and not report.unexpected
    assert torch.equal(model.fc.weight, head)  # even with 1000 classes the ImageNet fc is not kept
    assert torch.equal(model.conv1.weight, sd["conv1.weight"])


def test_inflated_first_conv_scales_by_temporal_kernel_on_a_constant_clip():
    """IBM repeats the 2D kernel k_t times without dividing: on a temporally constant clip the
    3D stem gives k_t x the 2D response at interior frames and (k_t - 1) x at the two edge frames,
    where the temporal zero padding hides one tap."""
    sd = imagenet_like_resnet()
    i3d = create_model("i3d_tiny", num_classes=10)
    load_imagenet(i3d, sd)
    frame = torch.randn(2, 3, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 5, 1, 1)  # NCTHW, 5 identical frames
    with torch.no_grad():
        out2d = nn.functional.conv2d(frame, sd["conv1.weight"], stride=2, padding=3)
        out3d = i3d.conv1(clip)
    kt = i3d.conv1.weight.shape[2]
    assert kt == 3
    for t in range(1, 4):
        torch.testing.assert_close(out3d[:, :, t], kt * out2d, rtol=1e-4, atol=1e-4)
    for t in (0, 4):
        torch.testing.assert_close(out3d[:, :, t], (kt - 1) * out2d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["i3d_tiny", "i3d_tiny_nts"])
def test_inflated_i3d_equals_the_2d_network_on_a_single_frame(name):
    """With one frame, temporal zero padding leaves only each kernel's centre slice — the 2D
    kernel itself — so the whole inflated network must reproduce the 2D network exactly."""
    sd = imagenet_like_resnet()
    tsn = create_model("tsn_tiny", num_classes=1000).eval()
    load_imagenet(tsn, sd)
    i3d = create_model(name, num_classes=1000).eval()
    report = load_imagenet(i3d, sd)
    assert not report.missing and not report.unexpected
    frame = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        f2d = tsn.forward_features(frame.unsqueeze(1))  # NTCHW, T=1
        f3d = i3d.forward_features(frame.unsqueeze(2))  # NCTHW, T=1
    torch.testing.assert_close(f3d, f2d, rtol=1e-4, atol=1e-5)


def test_inflated_r2plus1d_keeps_spatial_kernels_and_reports_new_temporal_convs():
    sd = imagenet_like_resnet()
    model = create_model("r2plus1d_tiny", num_classes=10)
    report = load_imagenet(model, sd)
    assert torch.equal(model.layer2[0].conv2.weight[:, :, 0], sd["layer2.0.conv2.weight"])
    assert torch.equal(model.conv1.weight[:, :, 1], sd["conv1.weight"])
    assert report.missing and all(".conv2_t." in k or ".bn2_t." in k for k in report.missing)
    assert not report.unexpected


def vit_state_dict(model, num_classes=1000, linear_patch=False) -> dict:
    """A timm-named ViT state dict with the dimensions of `model` (no temporal parts)."""
    torch.manual_seed(4)
    vit = create_model("timesformer_tiny", num_classes=num_classes, embed_dim=model.embed_dim)
    randomize_norm_stats(vit)
    sd = {k: v for k, v in vit.state_dict().items()
          if "temporal" not in k and k != "time_embed"}
    if linear_patch:
        sd["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"].flatten(1)
    return sd


@pytest.mark.parametrize("linear_patch", [False, True])
def test_imagenet_vit_into_timesformer(linear_patch):
    model = create_model("timesformer_tiny", num_classes=87)
    sd = vit_state_dict(model, linear_patch=linear_patch)
    report = load_imagenet(model, sd)
    assert report.classifier_replaced and not report.unexpected
    assert sorted(report.missing) == sorted(
        ["time_embed"] + [f"blocks.{i}.temporal_fc.{s}" for i in range(2) for s in ("weight", "bias")])
    assert torch.equal(model.blocks[1].temporal_attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])
    assert torch.equal(model.blocks[0].temporal_norm1.weight, sd["blocks.0.norm1.weight"])
    assert torch.equal(model.patch_embed.proj.weight.flatten(1),
                       torch.as_tensor(sd["patch_embed.proj.weight"]).flatten(1))
    assert not model.blocks[1].temporal_fc.weight.any()  # zero-initialised after the first block


# --- transfer modes ----------------------------------------------------------------------------------

def one_sgd_step(model, seed=0):
    opt = torch.optim.SGD(trainable_parameters(model), lr=0.5, momentum=0.9, weight_decay=1e-3)
    x = clip_batch(model, 4, seed)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("name", ["tsn_tiny", "i3d_tiny", "r2plus1d_tiny", "timesformer_tiny"])
def test_linear_probe_changes_only_the_head(name):
    torch.manual_seed(0)
    model = prepare_transfer(create_model(name, num_classes=10), "linear_probe", num_classes=3)
    model.train()
    head = model.get_classifier()
    assert {id(p) for p in trainable_parameters(model)} == {id(head.weight), id(head.bias)}
    assert model.dropout.training  # dropout before the new classifier still regularises it
    assert not any(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one_sgd_step(model)
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith(model.classifier_name + "."):
            assert not torch.equal(after[k], v), f"head {k} did not train"
        else:
            assert torch.equal(after[k], v), f"backbone tensor {k} changed"


def test_finetune_updates_backbone_and_batchnorm_statistics():
    """The control for the linear-probe test: the same step in finetune mode does change them."""
    torch.manual_seed(0)
    model = prepare_transfer(create_model("i3d_tiny", num_classes=10), "finetune", num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one_sgd_step(model)
    after = model.state_dict()
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert not torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
    assert model.fc.out_features == 3


def test_unfreezing_restores_training_mode():
    model = prepare_transfer(create_model("tsn_tiny", num_classes=10), "linear_probe", num_classes=3)
    prepare_transfer(model, "finetune", num_classes=3)
    model.train()
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_unknown_transfer_mode_is_an_error():
    with pytest.raises(ValueError, match="linear_probe"):
        prepare_transfer(create_model("tsn_tiny", num_classes=3), "probe", num_classes=3)


@pytest.mark.parametrize("name", ["i3d_tiny", "timesformer_tiny"])
def test_cached_features_reproduce_the_model_and_round_trip(tmp_path, name):
    torch.manual_seed(0)
    model = prepare_transfer(create_model(name, num_classes=10), "linear_probe", num_classes=4)
    model.train()  # extract_features must switch to eval and back
    batches = [(clip_batch(model, 3, s), torch.tensor([s % 4] * 3)) for s in range(2)]
    feats, labels = extract_features(model, batches)
    assert feats.shape == (6, model.num_features) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert model.training
    save_features(tmp_path / "f.pt", feats, labels)
    feats2, labels2 = load_features(tmp_path / "f.pt")
    assert torch.equal(feats2, feats) and torch.equal(labels2, labels)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(feats[:3]), model(batches[0][0]), rtol=1e-5, atol=1e-6)


class NotATensor:
    """Any pickled object other than tensors and containers: code, as far as loading goes."""


def test_checkpoints_are_read_as_data_not_code(tmp_path):
    model = create_model("tsn_tiny", num_classes=3)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": model.state_dict(), "extra": NotATensor()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(create_model("tsn_tiny", num_classes=3), path)


def test_timesformer_checkpoint_with_other_clip_and_image_size_is_resized():
    """8-frame 32² weights into a 4-frame 64² model: time and position embeddings are
    nearest-resized (as the reference loader does), everything else loads as is."""
    src = create_model("timesformer_tiny", num_classes=5, num_frames=8)
    with torch.no_grad():
        src.time_embed.copy_(torch.arange(8.0).view(1, 8, 1).expand_as(src.time_embed))
    dst = create_model("timesformer_tiny", num_classes=5, num_frames=4, image_size=64)
    report = load_checkpoint(dst, {"model_state": {f"model.{k}": v for k, v in src.state_dict().items()}})
    assert report.match_fraction == 1.0
    assert dst.time_embed[0, :, 0].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert dst.pos_embed.shape == (1, 65, 32)
    torch.testing.assert_close(dst.pos_embed[:, 0], src.pos_embed[:, 0])
    with torch.no_grad():
        assert dst(torch.randn(dst.input_shape(1))).shape == (1, 5)
