"""New parameters on a pretrained model: a tiny transformers model saved with save_pretrained
to a temporary folder (no download) and loaded back with a new classification head. Only the
head is initialized, from the pretrained features' measured scale; every loaded tensor is
bit-identical before and after."""

from __future__ import annotations

import pytest
import torch

import weightinit as wi

transformers = pytest.importorskip(
    "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")

LABELS = 32


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def loaded(tmp_path):
    config = transformers.BertConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128,
                                     num_attention_heads=2, vocab_size=128,
                                     max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformers.BertModel(config).save_pretrained(tmp_path)
        model, info = transformers.BertForSequenceClassification.from_pretrained(
            tmp_path, num_labels=LABELS, output_loading_info=True)
    ids = torch.randint(0, 128, (16, 12), generator=torch.Generator().manual_seed(1))
    return model, sorted(info["missing_keys"]), {"input_ids": ids}


def logits_std(model, inputs) -> float:
    model.eval()
    with torch.no_grad():
        return float(model(**inputs).logits.std())


@pytest.mark.parametrize("how", ["only", "auto"])
def test_only_the_new_head_is_initialized_from_the_features_scale(loaded, how):
    model, missing, inputs = loaded
    assert missing == ["classifier.bias", "classifier.weight"]
    before = {n: p.clone() for n, p in model.named_parameters()}
    only = missing if how == "only" else None  # "auto" reads transformers' loaded marks
    plan = wi.init_model(model, only=only, example_inputs=inputs)
    for name, param in model.named_parameters():
        if name not in missing:
            assert torch.equal(param, before[name]), name
            assert plan[name].kept
    head = plan["classifier.weight"]
    assert head.activation == "measured" and "measured" in head.note
    # The pooler's tanh features have E[x^2] far below 1; the head's std takes that in, so
    # its 16 x 32 logits have unit variance (a factor-2 band: 32 rows of 64 weights and 16
    # samples give a sampling error of a few tens of percent at most).
    assert 0.5 < logits_std(model, inputs) < 2.0


def test_only_refuses_unknown_names_and_changes_nothing(loaded):
    model, _, inputs = loaded
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(wi.InitError, match=r"'classifer.weight'.*Did you mean 'classifier"):
        wi.init_model(model, only=["classifer.weight"], example_inputs=inputs)
    with pytest.raises(wi.InitError, match="`only` must be a list"):
        wi.init_model(model, only="classifier.weight", example_inputs=inputs)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_only_takes_globs_and_ignores_buffers(loaded):
    model, _, inputs = loaded
    plan = wi.init_model(model, only=["classifier.*", "bert.embeddings.position_ids"],
                         example_inputs=inputs, dry_run=True)
    assert [row.name for row in plan if not row.kept] == ["classifier.weight",
                                                            "classifier.bias"]


def test_only_with_parametrizations_strict_policies_and_calibrators():
    from torch import nn
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), weight_norm(nn.Linear(8, 4)))
    by_state_dict = wi.init_model(model, only=["2.parametrizations.weight.original1"],
                                  dry_run=True)
    by_plan_name = wi.init_model(model, only=["2.weight"], dry_run=True)
    for plan in (by_state_dict, by_plan_name):
        assert [row.name for row in plan if not row.kept] == ["2.weight"]
    strict = wi.Policy([wi.Rule(wi.Zeros(), role="*.bias"), wi.Rule(wi.LeCun())], strict=True)
    plan = wi.init_model(model, strict, only=["0.*", "2.*"], dry_run=True)  # all selected
    assert not any(row.kept for row in plan)
    with pytest.raises(wi.InitError, match="`only` is not supported"):
        wi.init_model(model, "lsuv", only=["0.weight"], example_inputs=torch.randn(4, 4))
