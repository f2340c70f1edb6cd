"""bertlab.tokenization against the bundled Hugging Face tokenizer: the same ids everywhere."""

import pytest
import torch

from bertlab import hub
from bertlab.data import load_corpus, load_text_dataset
from bertlab.errors import ParameterError
from bertlab.tokenization import (
    WordPieceTokenizer,
    count_padding,
    normalize,
    pre_tokenize,
    wordpiece,
)

TRICKY = [
    "", "   ", "hello", "Héllo, wörld! naïve café", "unaffable 1234.56 $3,000 and 1st/2nd",
    "Hello[MASK]world [mask] [CLS]", "[PAD][UNK]", "你好世界 中文", "🥰 🙂 😀 emoji", "한국어",
    "a\u200bb\u00adc\x00d\ufffde", "İstanbul ǅ ß ﬁ", "Ωmega ΣΑΣ", "x" * 100, "x" * 101,
    "tab\there\nnew\u2028line\u3000ideo", "\x1cfoo\x85bar\x0bbaz", "e\u0301 combining",
    "don't stop-believing... (really?!) «quoted» — dash", "ｆｕｌｌｗｉｄｔｈ １２３",
    "Ångström µm ½ ² ℃ 3×4 ±1 →", "email@example.com http://a.b/c?d=e#f", "C++ & C# ~ ^_^",
    "".join(chr(i) for i in range(128)) + " Tab\tX\x0bY\x0cZ\x1fW\x7fEND",  # every ASCII character
]


@pytest.fixture(scope="module")
def tokenizers():
    return WordPieceTokenizer.from_pretrained("minilm"), hub.load_tokenizer("minilm")


def test_steps_on_a_known_example():
    assert normalize("Héllo,\tWÖRLD!") == "hello, world!"
    assert pre_tokenize("hello, world!") == ["hello", ",", "world", "!"]
    assert wordpiece("unaffable", {"una", "##ffa", "##ble", "un", "##aff"}) == ["una", "##ffa", "##ble"]
    assert wordpiece("xyz", {"x", "##y"}) == ["[UNK]"]


def test_same_ids_as_huggingface_on_all_bundled_data(tokenizers):
    ours, hf = tokenizers
    ds = load_text_dataset("reviews")
    texts = [ex.text for split in (ds.train, ds.validation, ds.test) for ex in split]
    texts += [sentence for document in load_corpus() for sentence in document]
    expected = hf(texts)["input_ids"]
    wrong = [(t, e) for t, e in zip(texts, expected) if ours.encode(t) != e]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, e.g. {wrong[0]}"


@pytest.mark.parametrize("text", TRICKY)
def test_same_ids_on_tricky_strings(tokenizers, text):
    ours, hf = tokenizers
    assert ours.encode(text) == hf(text)["input_ids"]


def test_pairs_truncation_and_padding_match(tokenizers):
    ours, hf = tokenizers
    for n1 in range(0, 9):
        for n2 in range(1, 9):
            a, b = " ".join(["cat"] * n1), " ".join(["dog"] * n2)
            for m in range(3, 15):
                kw = dict(truncation=True, max_length=m)
                assert ours(a, b, **kw) == dict(hf(a, b, **kw)), (n1, n2, m)
    texts, pairs = ["A short one.", "A somewhat longer sentence, with punctuation!"], ["b", "c d"]
    for padding in (True, "max_length"):
        kw = dict(padding=padding, truncation=True, max_length=12, return_tensors="pt")
        mine, ref = ours(texts, pairs, **kw), hf(texts, pairs, **kw)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert torch.equal(mine[key], ref[key]), key


def test_special_ids_decode_and_errors(tokenizers):
    ours, hf = tokenizers
    assert [ours.pad_token_id, ours.unk_token_id, ours.cls_token_id, ours.sep_token_id,
            ours.mask_token_id] == [0, 100, 101, 102, 103]
    assert ours.vocab_size == hf.vocab_size == 30522
    ids = ours.encode("The chef cooked the soup, happily.")
    assert ours.decode(ids) == "the chef cooked the soup, happily."
    with pytest.raises(ParameterError):
        ours(["a", "b c"], return_tensors="pt")  # unequal lengths, no padding
    with pytest.raises(ParameterError):
        ours(["a"], padding="max_length")  # no max_length


def test_restricted_vocabulary_cuts_its_texts_the_same(tokenizers):
    ours, _ = tokenizers
    texts = [s for doc in load_corpus()[:300] for s in doc]
    small = ours.restricted_to(texts)
    assert len(small) < 400 and small.all_special_ids == [0, 1, 2, 3, 4]
    for text in texts:
        assert small.tokenize(text) == ours.tokenize(text)


def test_count_padding(tokenizers):
    ours, _ = tokenizers
    batch = ours(["a b c d", "a"], padding=True, return_tensors="pt")
    assert count_padding([batch]) == (3, 12)
