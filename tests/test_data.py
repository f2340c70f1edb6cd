import csv
import json
from collections import Counter

import pytest
import torch

from bertlab import data, hub
from bertlab.errors import DataError
from bertlab.synth import corpus as corpus_gen
from bertlab.synth import reviews as reviews_gen


def test_reviews_sizes_labels_and_challenge(reviews):
    assert (len(reviews.train), len(reviews.validation), len(reviews.test)) == (4000, 500, 1000)
    assert reviews.label_names == ["negative", "positive"] and reviews.eval_split == "test"
    for split in (reviews.train, reviews.validation, reviews.test):
        counts = Counter(ex.label for ex in split)
        assert counts[0] == counts[1]
    assert reviews.challenge and all(ex.group in {"negation", "contrast"} for ex in reviews.challenge)
    assert set(reviews.challenge) <= set(reviews.test)


def test_no_template_or_sentence_leaks_across_splits():
    folder = data.DATA_DIR / "reviews"
    templates, texts = {}, {}
    for split in ("train", "validation", "test"):
        with open(folder / f"{split}.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        templates[split] = {r["template"] for r in rows}
        texts[split] = {r["text"] for r in rows}
        assert len(texts[split]) == len(rows)
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not templates[a] & templates[b], f"templates shared by {a} and {b}"
        assert not texts[a] & texts[b], f"sentences shared by {a} and {b}"


def test_committed_data_equals_a_fresh_generation(tmp_path):
    from bertlab.synth.__main__ import write_corpus, write_reviews

    write_reviews(tmp_path / "reviews")
    write_corpus(tmp_path / "corpus")
    for rel in ("reviews/train.tsv", "reviews/validation.tsv", "reviews/test.tsv", "corpus/corpus.txt"):
        assert (tmp_path / rel).read_bytes() == (data.DATA_DIR / rel).read_bytes(), rel
    assert reviews_gen.generate(1) != reviews_gen.generate(2)
    assert corpus_gen.generate(num_documents=3) == corpus_gen.generate(num_documents=3)


def test_bag_of_words_fails_on_challenge(reviews):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer()
    X = vec.fit_transform([ex.text for ex in reviews.train])
    clf = LogisticRegression(max_iter=1000).fit(X, [ex.label for ex in reviews.train])

    def accuracy(examples):
        pred = clf.predict(vec.transform([ex.text for ex in examples]))
        return (pred == [ex.label for ex in examples]).mean()

    assert accuracy(reviews.challenge) < 0.6  # words alone are not enough


def test_corpus_documents():
    docs = data.load_corpus()
    assert len(docs) == corpus_gen.NUM_DOCUMENTS
    assert all(len(doc) >= 4 for doc in docs) and docs[0][0].endswith(".")


def _write_tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))


def test_glue_style_folder_with_string_labels_and_unlabelled_test(tmp_path, capsys):
    # The GLUE layout: train.tsv and dev.tsv with a header, test.tsv without labels.
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"],
               [["a \"quoted\" gem of a film", "pos"], ["dull and slow", "neg"], ["it's great", "pos"]])
    _write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], [["not bad at all", "pos"], ["awful", "neg"]])
    _write_tsv(tmp_path / "test.tsv", ["index", "sentence"], [["0", "what a ride"], ["1", "meh"]])
    ds = data.load_text_dataset(str(tmp_path))
    assert ds.label_names == ["neg", "pos"]
    assert ds.train[0] == data.Example('a "quoted" gem of a film', 1)
    assert [ex.label for ex in ds.validation] == [1, 0]
    assert [ex.label for ex in ds.test] == [-1, -1]
    assert ds.eval_split == "validation" and "no labels" in capsys.readouterr().out
    assert ds.challenge is None


def test_missing_column_names_file_and_line(tmp_path):
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"], [["fine", "1"], ["no label here"], ["ok", "0"]])
    with pytest.raises(DataError, match=r"train.tsv, line 3: expected 2 columns"):
        data.load_text_dataset(str(tmp_path))
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\t1\n\t0\n")
    with pytest.raises(DataError, match=r"train.tsv, line 3: the sentence column is missing or empty"):
        data.load_text_dataset(str(tmp_path))


def test_single_csv_gets_a_stratified_split(tmp_path):
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(100):
            writer.writerow([f"sentence number {i}, with a comma", i % 2])
    ds = data.load_text_dataset(str(path), seed=3)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (80, 10, 10)
    assert Counter(ex.label for ex in ds.test) == {0: 5, 1: 5}
    assert ds.label_names == ["0", "1"]
    again = data.load_text_dataset(str(path), seed=3)
    assert again.test == ds.test


def test_jsonl_with_split_column_and_bad_line(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": "good", "label": "positive", "split": "train"},
            {"text": "bad", "label": "negative", "split": "train"},
            {"text": "fine", "label": "positive", "split": "validation"},
            {"text": "awful", "label": "negative", "split": "test"},
            {"text": "tricky", "label": "negative", "split": "challenge"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = data.load_text_dataset(str(path))
    assert [len(ds.train), len(ds.validation), len(ds.test), len(ds.challenge)] == [2, 1, 1, 1]
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"d.jsonl, line 2: not valid JSON"):
        data.load_text_dataset(str(path))


@pytest.mark.parametrize("source, message", [
    ("no/such/place.tsv", "No dataset"),
    ("", "non-empty"),
])
def test_bad_sources(source, message):
    with pytest.raises(DataError, match=message):
        data.load_text_dataset(source)


def test_bad_suffix_and_missing_train(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="use .csv, .tsv or .jsonl"):
        data.load_text_dataset(str(tmp_path / "x.txt"))
    with pytest.raises(DataError, match="has no train file"):
        data.load_text_dataset(str(tmp_path))


def test_hub_source_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"Could not load hf:nyu-mll/glue:sst2 .*offline.*hf:ORG/NAME\[:CONFIG\]"):
        data.load_text_dataset("hf:nyu-mll/glue:sst2")


@pytest.mark.parametrize("source, parsed", [
    ("hf:stanfordnlp/imdb", ("stanfordnlp/imdb", None)),
    ("hf:glue:sst2", ("glue", "sst2")),
    ("hf:nyu-mll/glue:sst2", ("nyu-mll/glue", "sst2")),
    ("hf:imdb", ("imdb", None)),
    ("hf:SetFit/sst2.v1:default", ("SetFit/sst2.v1", "default")),
    (" hf:glue:sst2 ", ("glue", "sst2")),
])
def test_hf_source_parser(source, parsed):
    assert data.parse_hf_source(source) == parsed


@pytest.mark.parametrize("source", ["hf:", "hf:glue:", "hf::sst2", "hf:a/b/c", "hf:a:b:c", "hf:/imdb",
                                    "hf:imdb/", "hf:a b", "hf:../imdb", "hf:a/..", "glue:sst2"])
def test_malformed_hf_sources_are_one_sentence(source):
    with pytest.raises(DataError) as info:
        data.parse_hf_source(source)
    assert str(info.value) == (f"{source!r} is not a datasets-hub source; write hf:NAME[:CONFIG] or "
                               "hf:ORG/NAME[:CONFIG] (e.g. hf:stanfordnlp/imdb, hf:nyu-mll/glue:sst2).")


def test_a_malformed_hf_source_fails_before_the_hub(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        assert name != "datasets", "the datasets hub was asked about a malformed source"
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError, match="is not a datasets-hub source"):
        data.load_text_dataset("hf:nyu-mll/glue/sst2")


def test_bundled_names_are_distinct_kinds():
    assert data.BUNDLED_DATASETS == ("reviews",) and hub.DEFAULT_MODEL == "minilm"
    assert not hasattr(data, "BUNDLED") and not hasattr(hub, "BUNDLED")


def _examples(labels):
    return [data.Example(f"sentence {i}", label) for i, label in enumerate(labels)]


def test_stratified_split_is_seeded_and_keeps_label_shares():
    examples = _examples([0] * 60 + [1] * 30 + [2] * 10)
    train, validation, test = data.stratified_split(examples, seed=1)
    assert sorted(train + validation + test, key=lambda ex: ex.text) == sorted(examples, key=lambda ex: ex.text)
    assert Counter(ex.label for ex in train) == {0: 48, 1: 24, 2: 8}
    assert Counter(ex.label for ex in validation) == {0: 6, 1: 3, 2: 1}
    assert Counter(ex.label for ex in test) == {0: 6, 1: 3, 2: 1}
    assert data.stratified_split(examples, seed=1) == (train, validation, test)
    assert data.stratified_split(examples, seed=2)[2] != test
    assert train[:10] != examples[:10]  # shuffled, not in file order


@pytest.mark.parametrize("labels", [[0] * 99 + [1], [0] * 90 + [1] * 5 + [2] * 5, [0, 1, 1], [0]])
def test_stratified_split_copes_with_rare_labels_and_tiny_files(labels):
    examples = _examples(labels)
    train, validation, test = data.stratified_split(examples, seed=0)
    assert sorted(train + validation + test, key=lambda ex: ex.text) == sorted(examples, key=lambda ex: ex.text)
    assert (len(train), len(validation)) == (round(len(labels) * 0.8), round(len(labels) * 0.1))


def test_a_file_with_a_single_example_label_loads(tmp_path):
    path = tmp_path / "rare.csv"
    path.write_text("text,label\n" + "".join(f"common {i},a\n" for i in range(19)) + "unique,b\n")
    ds = data.load_text_dataset(str(path))
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (16, 2, 2)
    assert ds.label_names == ["a", "b"]


def test_collator_pads_to_the_longest_and_matches_the_tokenizer(reviews):
    tok = hub.load_tokenizer("minilm")
    batch = reviews.train[:8]
    out = data.Collator(tok, max_length=64)(batch)
    lengths = [len(tok(ex.text)["input_ids"]) for ex in batch]
    assert out["input_ids"].shape == (8, max(lengths))
    assert out["attention_mask"].sum(1).tolist() == lengths
    assert "token_type_ids" in out and out["labels"].tolist() == [ex.label for ex in batch]
    short = data.Collator(tok, max_length=5)(batch)
    assert short["input_ids"].shape[1] == 5
    full = data.Collator(tok, max_length=32, pad_to_max_length=True)(batch)
    assert full["input_ids"].shape == (8, 32) and full["input_ids"].dtype == torch.long


# ---------------------------------------------------------------------------------------
# Labels and files that are wrong: one DataError sentence naming the file, the line and the fix


def _one_sentence(info, *parts):
    """The error is exactly its class, one line naming `parts`, with no traceback chained to it."""
    err, msg = info.value, str(info.value)
    assert "\n" not in msg and "Traceback" not in msg and 'File "' not in msg and msg.endswith("."), msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


def _raises(path, *parts, kind=DataError):
    with pytest.raises(kind) as info:
        data.load_text_dataset(str(path))
    assert type(info.value) is kind
    return _one_sentence(info, *parts)


def test_mixed_numeric_and_string_labels_are_refused(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("text,label\ngood one,1\nbad one,negative\nmeh,0\ngreat,positive\n")
    _raises(path, "mixed.csv", "'1' on line 2", "'negative' on line 3", "use one kind")


def test_mixed_label_kinds_across_the_files_of_a_folder_are_refused(tmp_path):
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"], [["good", "1"], ["bad", "0"]])
    _write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], [["fine", "pos"], ["awful", "neg"]])
    _raises(tmp_path, str(tmp_path), "train split", "'1'", "validation split", "'pos'", "use one kind")


@pytest.mark.parametrize("label", ["pos", "1"])
def test_a_one_class_file_is_refused(tmp_path, label):
    path = tmp_path / "one.csv"
    path.write_text("text,label\n" + "".join(f"sentence {i},{label}\n" for i in range(10)))
    _raises(path, "one.csv", f"only the label '{label}'", "at least two labels", "add examples")


def test_a_glue_folder_without_dev_holds_out_a_seeded_validation_split(tmp_path, capsys):
    rows = [[f"sentence {i}", "pos" if i % 2 else "neg"] for i in range(40)]
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"], rows)
    _write_tsv(tmp_path / "test.tsv", ["index", "sentence"], [["0", "what a ride"], ["1", "meh"]])
    ds = data.load_text_dataset(str(tmp_path), seed=4)
    assert (len(ds.train), len(ds.validation), ds.eval_split) == (36, 4, "validation")
    assert Counter(ex.label for ex in ds.validation) == {0: 2, 1: 2}
    assert sorted(ex.text for ex in ds.train + ds.validation) == sorted(r[0] for r in rows)
    note = next(n for n in ds.notes if "no validation examples" in n)
    assert "10% of train" in note and "seed 4" in note and note in capsys.readouterr().out
    assert data.load_text_dataset(str(tmp_path), seed=4).validation == ds.validation


def test_a_missing_bundled_file_says_how_to_regenerate(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "reviews").mkdir()
    for split in ("train", "test"):
        shutil.copy(data.DATA_DIR / "reviews" / f"{split}.tsv", tmp_path / "reviews")
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(DataError) as info:
        data.load_text_dataset("reviews")
    _one_sentence(info, "validation.tsv", str(tmp_path / "reviews"), "python -m bertlab.synth")


@pytest.mark.parametrize("label", [[1], {"name": "positive"}])
def test_a_jsonl_label_that_is_a_list_or_dict_is_refused(tmp_path, label):
    path = tmp_path / "d.jsonl"
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": label}, {"text": "ok", "label": 0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _raises(path, "d.jsonl, line 2", "label must be a number or a string")


@pytest.mark.parametrize("label", ["-2", "-1"])
def test_a_negative_label_in_a_labelled_split_is_refused(tmp_path, label):
    path = tmp_path / "neg.csv"
    path.write_text(f"text,label\ngood,1\nodd,{label}\nbad,0\n")
    _raises(path, "neg.csv, line 3", label, "only -1", "test split")


def test_minus_one_in_a_test_file_still_means_unlabeled(tmp_path):
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"], [["good", "1"], ["bad", "0"]])
    _write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], [["fine", "1"], ["awful", "0"]])
    _write_tsv(tmp_path / "test.tsv", ["sentence", "label"], [["what", "-1"], ["meh", "-1"]])
    ds = data.load_text_dataset(str(tmp_path))
    assert [ex.label for ex in ds.test] == [-1, -1] and ds.eval_split == "validation"


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_non_utf8_bytes_name_the_file_and_line(tmp_path, suffix):
    path = tmp_path / f"latin{suffix}"
    if suffix == ".jsonl":
        lines = ['{"text": "good", "label": 1}', '{"text": "café au lait", "label": 0}']
    else:
        sep = "\t" if suffix == ".tsv" else ","
        lines = [f"text{sep}label", f"good{sep}1", f"café au lait{sep}0"]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    line = 2 if suffix == ".jsonl" else 3
    _raises(path, f"latin{suffix}, line {line}", "UTF-8", "re-save it as UTF-8")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_utf8_bom_from_excel_is_ignored(tmp_path, suffix):
    path = tmp_path / f"excel{suffix}"
    if suffix == ".csv":
        text = "text,label\ngood,pos\nbad,neg\nfine,pos\n"
    else:
        text = "".join(json.dumps({"text": t, "label": lab}) + "\n"
                       for t, lab in (("good", "pos"), ("bad", "neg"), ("fine", "pos")))
    path.write_text(text, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    ds = data.load_text_dataset(str(path))
    assert ds.label_names == ["neg", "pos"] and len(ds.train + ds.validation + ds.test) == 3


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_huge_field_is_read(tmp_path, suffix):
    sep = "\t" if suffix == ".tsv" else ","
    path = tmp_path / f"huge{suffix}"
    huge = "word " * 40_000  # 200 KB in one field; the tokenizer truncates it later
    path.write_text(f"text{sep}label\n{huge}{sep}1\nshort{sep}0\nfine{sep}1\n")
    limit = csv.field_size_limit()
    ds = data.load_text_dataset(str(path))
    assert max(len(ex.text) for ex in ds.train + ds.validation + ds.test) == len(huge.strip())
    assert csv.field_size_limit() == limit  # the process-wide limit is left as it was
