"""The attention explorer's callbacks, driven without a kernel, and its numbers."""

import torch

from bertlab import explorers, hub, plots
from bertlab.model import BertModel
from bertlab.saliency import attention_maps


def test_attention_maps_of_the_from_scratch_bert_match_transformers():
    bert = BertModel.from_pretrained("minilm")  # sdpa: attention_maps switches to eager and back
    tokens, maps = attention_maps(bert, hub.load_tokenizer("minilm"), "The bank of the river.")
    assert bert.config.attn_implementation == "sdpa" and not bert.config.output_attentions
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "bank" in tokens
    assert maps.shape == (6, 12, len(tokens), len(tokens))
    assert torch.allclose(maps.sum(-1), torch.ones(6, 12, len(tokens)), atol=1e-5)
    ref = hub.load_encoder("minilm", attn_implementation="eager")
    batch = hub.load_tokenizer("minilm")("The bank of the river.", return_tensors="pt")
    with torch.no_grad():
        want = torch.stack(ref(**batch, output_attentions=True).attentions)[:, 0]
    assert (maps - want).abs().max() < 1e-5


def test_sliders_and_text_box_redraw():
    explorer = explorers.attention_explorer("A short sentence.")
    first = explorer.figure
    assert first.axes[0].get_title() == "minilm: layer 0, head 0"
    explorer.controls["layer"].value = 5
    explorer.controls["head"].value = 11
    assert explorer.figure is not first
    assert explorer.figure.axes[0].get_title() == "minilm: layer 5, head 11"
    shown = explorer.figure.axes[0].images[0].get_array()
    assert torch.allclose(torch.as_tensor(shown), explorer.maps[5, 11])
    explorer.controls["sentence"].value = "The bank of the river was steep."
    labels = [t.get_text() for t in explorer.figure.axes[0].get_xticklabels()]
    assert labels == explorer.tokens and "steep" in labels
    explorer.controls["sentence"].value = "   "  # an empty box falls back to the example
    assert "animal" in explorer.tokens
    assert explorer.controls["layer"].max == 5 and explorer.controls["head"].max == 11


def test_show_displays_a_png(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    plots.show(explorers.attention_figure(["[CLS]", "hi", "[SEP]"], torch.eye(3), "t"))
    assert len(shown) == 1 and shown[0].data[:4] == b"\x89PNG"
