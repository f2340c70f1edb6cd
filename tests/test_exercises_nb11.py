"""Notebook 11's exercises: the right answers pass, and each usual mistake gets its own message."""

from __future__ import annotations

import itertools

import pytest

from bertlab import check
from bertlab.exercises import nb11

# ---------------------------------------------------------------------------------------
# 11.1 The FLOPs that padding wastes


def padding_costs(lengths, batch_size, max_length, n_params, num_layers, hidden_size) -> dict[str, float]:
    """Training FLOPs of one epoch over sentences of `lengths` real tokens: padded, dynamic, packed."""
    per_token = 6.0 * n_params  # 6N: the weight matrices, forward + backward
    per_pair = 12.0 * num_layers * hidden_size  # 12Ld: attention, times t**2 for a sequence of t
    padded = len(lengths) * (per_token * max_length + per_pair * max_length**2)  # all at max_length
    dynamic = 0.0
    for start in range(0, len(lengths), batch_size):  # the last batch may hold fewer sentences
        batch = lengths[start:start + batch_size]
        longest = max(batch)  # the whole batch is padded to its longest sentence
        dynamic += len(batch) * (per_token * longest + per_pair * longest**2)
    packed = sum(per_token * t + per_pair * t**2 for t in lengths)  # each sentence attends within itself
    return {"padded": padded, "dynamic": dynamic, "packed": packed}


def _with(**changes):
    """The right answer with some layouts computed the wrong way."""
    def answer(lengths, batch_size, max_length, n, L, d):
        right = padding_costs(lengths, batch_size, max_length, n, L, d)
        return right | {key: make(lengths, batch_size, max_length, n, L, d) for key, make in changes.items()}
    return answer


def _seq(seqs, n, L, d, linear=6.0, attention=12.0):
    return sum(linear * n * t + attention * L * d * t * t for t in seqs)


def _global_max(lengths, b, m, n, L, d):
    return _seq([max(lengths)] * len(lengths), n, L, d)


def _drop_last(lengths, b, m, n, L, d):
    full = lengths[:len(lengths) - len(lengths) % b]
    return sum(len(full[i:i + b]) * _seq([max(full[i:i + b])], n, L, d) for i in range(0, len(full), b))


def _sorted_first(lengths, b, m, n, L, d):
    return padding_costs(sorted(lengths), b, m, n, L, d)["dynamic"]


def _concatenated(lengths, b, m, n, L, d):
    return 6.0 * n * sum(lengths) + 12.0 * L * d * sum(lengths) ** 2


def _whole_rows(lengths, b, m, n, L, d):
    total = sum(lengths)
    rows = [m] * (total // m) + [total % m]
    return 6.0 * n * total + 12.0 * L * d * sum(r * r for r in rows)


def _no_attention(lengths, b, m, n, L, d):
    return {key: _seq(seqs, n, L, d, attention=0.0) for key, seqs in nb11._layouts(lengths, b, m).items()}


def _forward_only(lengths, b, m, n, L, d):
    return {key: _seq(seqs, n, L, d, 2.0, 4.0) for key, seqs in nb11._layouts(lengths, b, m).items()}


WRONG_11_1 = [
    ("dynamic to the data set's longest", _with(dynamic=_global_max), "longest sentence of the whole data set"),
    ("last batch dropped", _with(dynamic=_drop_last), "drops the last, shorter batch"),
    ("sorted before batching", _with(dynamic=_sorted_first), "that is bucketing"),
    ("packed attention over everything", _with(packed=_concatenated), "over the whole concatenation"),
    ("packed attention over rows", _with(packed=_whole_rows), "over whole rows of max_length"),
    ("packed as full rows", _with(packed=lambda lengths, b, m, n, L, d: _seq(
        [m] * -(-sum(lengths) // m), n, L, d)), "counts full rows of max_length"),
    ("padded to the longest", _with(padded=_global_max), "naive loop pads them all to max_length"),
    ("no attention term", _no_attention, "has no attention term"),
    ("forward only", _forward_only, "forward pass only"),
    ("a list, not a dict", lambda *args: list(padding_costs(*args).values()), "return a dict"),
    ("other keys", lambda *args: {"pad": 1.0, "dyn": 1.0, "pack": 1.0}, "keys must be exactly"),
]


def test_11_1_right_answer_passes(capsys):
    check.exercise("11.1", padding_costs)
    assert "✓ Exercise 11.1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,message", [w[1:] for w in WRONG_11_1], ids=[w[0] for w in WRONG_11_1])
def test_11_1_mistakes_are_named(answer, message):
    with pytest.raises(check.CheckFailed) as err:
        check.exercise("11.1", answer)
    assert err.value.exercise_id == "11.1"
    assert message in err.value.message


def test_11_1_mistakes_differ_from_the_right_answer_and_from_each_other():
    """On the checked cases, no named mistake comes within tolerance of the right total or another one."""
    for lengths, b, m, model in (([5, 9, 3, 12, 4, 7, 6], 3, 16, (1e6, 2, 64)),
                                 ([12, 9, 15, 11, 64, 10, 13, 8, 14, 17, 9, 11, 96,
                                   12, 10, 16, 13, 9, 41, 11, 14, 12, 18, 10, 110, 13], 8, 128, (10.6e6, 6, 384))):
        right = padding_costs(lengths, b, m, *model)
        for key, mistakes in nb11._usual_mistakes(lengths, b, m, model).items():
            seqs = nb11._layouts(lengths, b, m)[key]
            values = [right[key], right[key] / 3, nb11._flops(seqs, *model, attention=0.0)]
            values += [wrong for wrong, _ in mistakes]
            for x, y in itertools.combinations(values, 2):
                assert not nb11._near(x, y), (key, x, y)


# ---------------------------------------------------------------------------------------
# 11.2 Offsets for the variable-length kernel


def varlen_offsets_by_hand(attention_mask: list[list[int]]) -> tuple[list[int], int]:
    """Offsets where the runs of the flat (B * T) batch begin, then B * T; and the longest run."""
    B, T = len(attention_mask), len(attention_mask[0])
    cu_seqlens = []
    for r, row in enumerate(attention_mask):
        for t, k in enumerate(row):
            if t == 0 or k != row[t - 1]:  # a row's token 0, a new sentence, or the padding
                cu_seqlens.append(r * T + t)  # the flat index of the run's first token
    cu_seqlens.append(B * T)  # where the last run ends
    max_len = max(b - a for a, b in zip(cu_seqlens, cu_seqlens[1:]))  # the longest run
    return cu_seqlens, max_len


def test_the_reference_agrees_with_offsets_written_by_hand():
    """varlen_offsets, which the check compares with, gives what the exercise states: the
    example, and an all-padding row as one run of T tokens even after a row ending in padding."""
    by_hand = {
        ((1, 1, 2, 2, 2, 0), (1, 1, 1, 1, 2, 2)): ([0, 2, 5, 6, 10, 12], 4),
        ((1, 1, 1, 1, 1, 1, 1), (1, 1, 2, 2, 2, 0, 0), (1, 2, 3, 4, 5, 0, 0)):
            ([0, 7, 9, 12, 14, 15, 16, 17, 18, 19, 21], 7),
        ((1, 1, 2, 2, 2, 0, 0, 0), (1, 1, 1, 1, 1, 1, 1, 0), (0,) * 8): ([0, 2, 5, 8, 15, 16, 24], 8),
    }
    assert set(by_hand) == {tuple(map(tuple, batch)) for batch in nb11.BATCHES}
    for batch, expected in by_hand.items():
        batch = [list(row) for row in batch]
        assert nb11._reference(batch) == expected
        assert varlen_offsets_by_hand(batch) == expected
    assert nb11._reference([[1, 1, 0], [0, 0, 0]]) == ([0, 2, 3, 6], 3)  # the case stated in the text


def test_11_2_right_answer_passes(capsys):
    check.exercise("11.2", varlen_offsets_by_hand)
    assert "✓ Exercise 11.2" in capsys.readouterr().out


@pytest.mark.parametrize("convert", [tuple, "numpy", "torch"])
def test_11_2_accepts_tuples_arrays_and_tensors(convert, capsys):
    import numpy as np
    import torch

    make = {"numpy": lambda cu: np.array(cu, dtype=np.int32),
            "torch": lambda cu: torch.tensor(cu, dtype=torch.int32)}.get(convert, convert)

    def answer(mask):
        cu, longest = varlen_offsets_by_hand(mask)
        return make(cu), (np.int64(longest) if convert == "numpy" else longest)

    check.exercise("11.2", answer)
    assert "✓ Exercise 11.2" in capsys.readouterr().out


def _row_local(mask):
    T = len(mask[0])
    cu, longest = varlen_offsets_by_hand(mask)
    return [b % T for b in cu[:-1]] + [cu[-1]], longest


def _no_end(mask):
    cu, longest = varlen_offsets_by_hand(mask)
    return cu[:-1], longest


def _across_rows(mask):
    flat = [k for row in mask for k in row]
    cu = [i for i, k in enumerate(flat) if i == 0 or k != flat[i - 1]] + [len(flat)]
    return cu, max(b - a for a, b in zip(cu, cu[1:]))


def _padding_left_out(mask):
    T = len(mask[0])
    cu = [r * T + t for r, row in enumerate(mask) for t, k in enumerate(row) if k and (t == 0 or k != row[t - 1])]
    cu.append(len(mask) * T)
    return cu, max(b - a for a, b in zip(cu, cu[1:]))


def _sentence_lengths(mask):
    cu = [0]
    for row in mask:
        for k in sorted(set(row) - {0}):
            cu.append(cu[-1] + row.count(k))
    return cu, max(b - a for a, b in zip(cu, cu[1:]))


def _longest_sentence(mask):
    cu, _ = varlen_offsets_by_hand(mask)
    flat = [k for row in mask for k in row]
    return cu, max(b - a for a, b in zip(cu, cu[1:]) if flat[a])


def _number_of_runs(mask):
    cu, _ = varlen_offsets_by_hand(mask)
    return cu, len(cu) - 1


WRONG_11_2 = [
    ("row-local offsets", _row_local, "restart in every row"),
    ("no final B*T", _no_end, "lacks its last entry"),
    ("runs across rows", _across_rows, "every row's token 0 begins a new run"),
    ("padding left out", _padding_left_out, "padding is a run of its own and begins at its own offset"),
    ("sentence lengths only", _sentence_lengths, "as if the padding had been removed"),
    ("max_len of the sentences", _longest_sentence, "is the longest sentence"),
    ("max_len as the number of runs", _number_of_runs, "is the number of runs"),
    ("one value only", lambda mask: varlen_offsets_by_hand(mask)[0], "return a pair"),
    ("nested offsets", lambda mask: ([varlen_offsets_by_hand(mask)[0]], 4), "flat list of ints"),
    ("max_len not a number", lambda mask: (varlen_offsets_by_hand(mask)[0], "4"), "max_len must be an int"),
]


@pytest.mark.parametrize("answer,message", [w[1:] for w in WRONG_11_2], ids=[w[0] for w in WRONG_11_2])
def test_11_2_mistakes_are_named(answer, message):
    with pytest.raises(check.CheckFailed) as err:
        check.exercise("11.2", answer)
    assert err.value.exercise_id == "11.2"
    assert message in err.value.message
    others = [m for _, a, m in WRONG_11_2 if a is not answer]
    assert not any(m in err.value.message for m in others)


def test_11_2_mistakes_differ_from_the_right_answer_and_from_each_other():
    """On every checked batch, the named wrong offsets and wrong max_len differ from the right
    ones wherever they are not the right answer there, and from each other; none decreases."""
    for batch in nb11.BATCHES:
        right_cu, right_max = nb11._reference(batch)
        wrong_cu = [w for w, _ in nb11._offset_mistakes(batch) if w != right_cu]
        wrong_max = [w for w, _ in nb11._max_len_mistakes(batch) if w != right_max]
        for values in (wrong_cu, wrong_max):
            assert len(values) == len({str(v) for v in values}), (batch, values)
        assert all(a <= b for w in wrong_cu for a, b in zip(w, w[1:]))
    # each named mistake shows on some batch, so each message can be reached
    for i in range(4):
        assert any(nb11._offset_mistakes(b)[i][0] != nb11._reference(b)[0] for b in nb11.BATCHES), i
    for i in range(2):
        assert any(nb11._max_len_mistakes(b)[i][0] != nb11._reference(b)[1] for b in nb11.BATCHES), i
