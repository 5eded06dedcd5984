import copy
import fractions
import json
import re
import warnings

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import nctool.model.clip
from nctool.config import load_recipe
from nctool.errors import NctoolError
from nctool.model.checkpoint import save_checkpoint
from nctool.model.clip import create_model, load_trained_model, local_similarity, pair_scores
from nctool.model.transforms import preprocess_for

CAPTIONS = ["a plane parked next to a long runway", "green trees!", ""]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("nctool-tiny").eval()


@pytest.fixture(scope="module")
def tokenize(tiny):
    return preprocess_for(tiny).tokenizer


@pytest.fixture
def images():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def unit(shape, seed):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def direct_local_similarity(text_local, image_local):
    cosines = torch.einsum("atd,bpd->abtp", text_local, image_local)
    return cosines.pow(2).sum(dim=(2, 3)).sqrt()


def test_tiny_config_shapes_and_normalisation(tiny, images, tokenize):
    assert preprocess_for(tiny).image_size == 64
    image_global, image_local = tiny.encode_image(images)
    assert image_global.shape == (3, 128) and image_local.shape == (3, 64, 128)  # 8x8 patches
    tokens = tokenize(CAPTIONS)
    assert tokens.shape == (3, 32) and tokens.dtype == torch.long
    text_global, text_local = tiny.encode_text(tokens)
    assert text_global.shape == (3, 128) and text_local.shape == (3, 32, 128)
    for embedding in (image_global, image_local, text_global, text_local):
        torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(embedding.shape[:-1]))


def test_global_embeddings_are_open_clips_pooled_outputs(tiny, images, tokenize):
    tokens = tokenize(CAPTIONS)
    with torch.no_grad():
        torch.testing.assert_close(tiny.encode_image(images)[0], tiny.clip.encode_image(images, normalize=True))
        torch.testing.assert_close(tiny.encode_text(tokens)[0], tiny.clip.encode_text(tokens, normalize=True))
        # global-only path gives the same
        torch.testing.assert_close(tiny.encode_image(images, local=False)[0], tiny.encode_image(images)[0])


def test_local_image_tokens_are_projected_patch_tokens(tiny, images):
    visual = copy.deepcopy(tiny.clip.visual)
    visual.output_tokens = True  # open_clip then also returns the patch tokens after ln_post, unprojected
    with torch.no_grad():
        pooled, patch_tokens = visual(images)
        image_global, image_local = tiny.encode_image(images)
    torch.testing.assert_close(image_local, F.normalize(patch_tokens @ visual.proj, dim=-1))
    # global is the class token through the same ln_post and projection
    torch.testing.assert_close(image_global, F.normalize(pooled, dim=-1))


def test_local_text_tokens_are_all_positions_projected(tiny, tokenize):
    clip = tiny.clip
    tokens = tokenize(CAPTIONS)
    with torch.no_grad():
        x = clip.token_embedding(tokens) + clip.positional_embedding
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        expected = F.normalize(x @ clip.text_projection, dim=-1)
        text_global, text_local = tiny.encode_text(tokens)
    torch.testing.assert_close(text_local, expected)
    # the global embedding is the local one at the end-of-text token
    torch.testing.assert_close(text_global, expected[torch.arange(3), tokens.argmax(1)])


def test_mask_padding_zeroes_padding_positions(tiny, tokenize):
    masked = copy.deepcopy(tiny)
    masked.mask_padding = True
    tokens = tokenize(CAPTIONS)
    # SOT + words + EOT are real; the empty caption is SOT and EOT alone
    mask = torch.arange(tokens.shape[1]) <= tokens.argmax(1, keepdim=True)
    assert mask.sum(1).tolist()[2] == 2 and mask.sum(1).tolist() == (tokens != 0).sum(1).tolist()
    with torch.no_grad():
        _, plain = tiny.encode_text(tokens)
        _, zeroed = masked.encode_text(tokens)
    torch.testing.assert_close(zeroed[mask], plain[mask])
    assert zeroed[~mask].abs().sum() == 0
    assert create_model("nctool-tiny", mask_padding=True).mask_padding


def test_forward_returns_both_towers(tiny, images, tokenize):
    outputs = tiny(images, tokenize(CAPTIONS))
    assert [tuple(o.shape) for o in outputs] == [(3, 128), (3, 64, 128), (3, 128), (3, 32, 128)]


def test_vit_b32_builds_at_random_init():
    model = create_model("ViT-B-32")
    preprocess = preprocess_for(model)
    assert (preprocess.image_size, preprocess.tokenizer(["a"]).shape[1], model.clip.visual.output_dim) == (224, 77, 512)
    assert model.pretrained is None and model.model_name == "ViT-B-32"


def test_unsupported_image_tower_fails_only_for_local_features(tmp_path):
    config = json.loads((nctool.model.clip.CONFIG_DIR / "nctool-tiny.json").read_text())
    config["vision_cfg"].update(attentional_pool=True, attn_pooler_queries=4, attn_pooler_heads=2)
    (tmp_path / "nctool-test-attnpool.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "nctool-test-attnpool.json")
    model = create_model("nctool-test-attnpool")
    images = torch.randn(2, 3, 64, 64)
    assert model.encode_image(images, local=False)[0].shape == (2, 128)
    with pytest.raises(NctoolError, match="no projected patch tokens"):
        model.encode_image(images)


def test_local_similarity_equals_einsum():
    text_local, image_local = unit((5, 7, 16), 0), unit((4, 9, 16), 1)
    torch.testing.assert_close(local_similarity(text_local, image_local),
                               direct_local_similarity(text_local, image_local))


def test_local_similarity_chunks_give_the_same_result(monkeypatch):
    text_local, image_local = unit((5, 7, 16), 0), unit((4, 9, 16), 1)
    expected = local_similarity(text_local, image_local)
    monkeypatch.setattr(nctool.model.clip, "GRAM_BUDGET_BYTES", 2 * 4 * 16 * 16)  # two items per chunk
    torch.testing.assert_close(local_similarity(text_local, image_local), expected)


def test_local_similarity_of_zeroed_padding_equals_the_real_tokens_alone():
    text_local, image_local = unit((3, 6, 8), 2), unit((2, 5, 8), 3)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    masked = local_similarity(text_local * mask.unsqueeze(-1), image_local)
    for a in range(3):
        torch.testing.assert_close(masked[a], direct_local_similarity(text_local[a:a + 1, mask[a]], image_local)[0])


def test_local_similarity_gradients_are_finite():
    text_local = unit((3, 4, 8), 5).requires_grad_()
    local_similarity(text_local, unit((2, 5, 8), 6)).sum().backward()
    assert torch.isfinite(text_local.grad).all()


def test_pair_scores_weights_global_and_local():
    image_global, text_global = unit((4, 16), 7), unit((6, 16), 8)
    image_local, text_local = unit((4, 9, 16), 9), unit((6, 7, 16), 10)
    scores = pair_scores(image_global, image_local, text_global, text_local)
    expected = 0.9 * image_global @ text_global.T + 0.1 * direct_local_similarity(text_local, image_local).T
    assert scores.shape == (4, 6)
    torch.testing.assert_close(scores, expected)


def test_unknown_model_name_lists_available_names():
    with pytest.raises(NctoolError, match="model 'ViT-Q-99': unknown.*nctool-tiny"):
        create_model("ViT-Q-99")


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(NctoolError, match="no such checkpoint file"):
        create_model("nctool-tiny", pretrained=tmp_path / "missing.safetensors")


def test_pretrained_tag_that_cannot_be_fetched(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    with pytest.raises(NctoolError, match="pretrained 'openai' for ViT-B-32.*local path"):
        create_model("ViT-B-32", pretrained="openai")


def _other_config_state_dict():
    other = open_clip.CLIP(embed_dim=32, vision_cfg={"image_size": 32, "patch_size": 16, "width": 64, "layers": 1},
                           text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1})
    return other.state_dict()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_of_another_config_is_refused(tmp_path, suffix):
    path = tmp_path / f"other{suffix}"
    state = _other_config_state_dict()
    torch.save(state, path) if suffix == ".pt" else save_file(state, path)
    with pytest.raises(NctoolError, match=rf"{re.escape(str(path))}: does not fit model nctool-tiny: '\S+' has shape"):
        create_model("nctool-tiny", pretrained=path)


def test_checkpoint_missing_a_key_names_it(tmp_path, tiny):
    state = dict(tiny.clip.state_dict())
    del state["ln_final.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(NctoolError, match="key 'ln_final.weight' is missing"):
        create_model("nctool-tiny", pretrained=tmp_path / "partial.pt")


def test_unreadable_checkpoint(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(NctoolError, match="not a readable checkpoint"):
        create_model("nctool-tiny", pretrained=tmp_path / "junk.bin")


def test_a_protocol_4_pickle_as_pretrained_is_refused_without_torchs_warning(tmp_path):
    torch.save({"weights": fractions.Fraction(1, 2)}, tmp_path / "p4.pt", pickle_protocol=4)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(NctoolError, match="p4.pt: not a readable checkpoint"):
            create_model("nctool-tiny", pretrained=tmp_path / "p4.pt")
    assert not [w for w in shown if "pickle protocol" in str(w.message)], [str(w.message) for w in shown]


def test_local_checkpoint_round_trip(tmp_path, tiny, images, tokenize):
    path = tmp_path / "tiny.safetensors"
    save_file(tiny.clip.state_dict(), path)
    loaded = create_model("nctool-tiny", pretrained=str(path)).eval()
    assert loaded.pretrained == str(path)
    tokens = tokenize(CAPTIONS)
    with torch.no_grad():
        for expected, actual in zip(tiny(images, tokens), loaded(images, tokens)):
            torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    # .pt holding {"state_dict": ...}, as open_clip training writes it
    torch.save({"state_dict": tiny.clip.state_dict(), "epoch": 3}, tmp_path / "tiny.pt")
    assert create_model("nctool-tiny", pretrained=tmp_path / "tiny.pt")


def test_state_dict_round_trip(tiny, images):
    other = create_model("nctool-tiny").eval()
    other.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(other.encode_image(images)[0], tiny.encode_image(images)[0], rtol=0, atol=0)


def test_nctool_checkpoint_as_pretrained(tmp_path, tiny, images, tokenize, caplog):
    """A run's best.pt fine-tunes like an open_clip file: the same weights, and only as the model it was trained as."""
    path = tmp_path / "best.pt"
    save_checkpoint({"model": tiny.state_dict(), "config": load_recipe("demo").to_dict()}, path)
    create_model("nctool-tiny")
    assert "initialized randomly" in caplog.text  # open_clip's notice, true for a random init
    caplog.clear()
    loaded = create_model("nctool-tiny", pretrained=path).eval()
    load_trained_model(path)
    assert "initialized randomly" not in caplog.text  # not for weights loaded from a file
    assert loaded.pretrained == str(path)
    tokens = tokenize(CAPTIONS)
    with torch.no_grad():
        for expected, actual in zip(tiny(images, tokens), loaded(images, tokens)):
            torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    with pytest.raises(NctoolError, match=rf"^{re.escape(str(path))}: an nctool checkpoint of model nctool-tiny, "
                                          r"not ViT-B-32; choose model nctool-tiny [^\n]*$"):
        create_model("ViT-B-32", pretrained=path)
