"""The objective expression parser: grammar, values, signatures and error messages."""

import numpy as np
import pytest
from keras import ops

from lucidwidget.optvis import objectives as obj
from lucidwidget.optvis.objectives.expression import parse, tokenize

RNG = np.random.default_rng(1)
ACTS = {
    "block4_conv3": RNG.normal(size=(2, 3, 4, 50)).astype(np.float32),
    "block5_conv1": RNG.normal(size=(2, 2, 2, 10)).astype(np.float32),
    "inner/conv": RNG.normal(size=(2, 3, 3, 4)).astype(np.float32),
    "predictions": RNG.normal(size=(2, 30)).astype(np.float32),
    "input": RNG.uniform(size=(2, 6, 6, 3)).astype(np.float32),
}
T = {name: ops.convert_to_tensor(v) for name, v in ACTS.items()}.__getitem__


def scalar(tensor):
    return float(ops.convert_to_numpy(tensor))


def value(text):
    return scalar(parse(text)(T))


def ch(layer, n):
    return ACTS[layer][..., n].mean()


def tv():
    return scalar(obj.total_variation()(T))


@pytest.mark.parametrize("text, expected", [
    ("block4_conv3:42", lambda: ch("block4_conv3", 42)),
    ("block4_conv3:42 - 0.5*block5_conv1:7", lambda: ch("block4_conv3", 42) - 0.5 * ch("block5_conv1", 7)),
    ("-block4_conv3:42", lambda: -ch("block4_conv3", 42)),
    ("2*(block4_conv3:1 + block4_conv3:2)/3", lambda: 2 * (ch("block4_conv3", 1) + ch("block4_conv3", 2)) / 3),
    ("block4_conv3:42 - 1e-3*total_variation()", lambda: ch("block4_conv3", 42) - 1e-3 * tv()),
    ("block4_conv3:1 + 2*block4_conv3:2*3", lambda: ch("block4_conv3", 1) + 6 * ch("block4_conv3", 2)),
    ("block4_conv3:1 - block4_conv3:2 - block4_conv3:3",
     lambda: ch("block4_conv3", 1) - ch("block4_conv3", 2) - ch("block4_conv3", 3)),
    ("- -block4_conv3:1 + +block4_conv3:2", lambda: ch("block4_conv3", 1) + ch("block4_conv3", 2)),
    ("block4_conv3:4/2", lambda: ch("block4_conv3", 4) / 2),
    ("inner/conv:3/4", lambda: ch("inner/conv", 3) / 4),
    ("  block4_conv3 : 4\t-.5 *\nblock5_conv1:1 ", lambda: ch("block4_conv3", 4) - 0.5 * ch("block5_conv1", 1)),
    ("block4_conv3:5@3,2", lambda: ACTS["block4_conv3"][:, 2, 3, 5].mean()),
    ("neuron(block4_conv3, 5)", lambda: ACTS["block4_conv3"][:, 1, 2, 5].mean()),
    ("neuron(block4_conv3, 5, y=0, x=1, batch=1)", lambda: ACTS["block4_conv3"][1, 0, 1, 5]),
    ("class_logit(predictions, 20)", lambda: ACTS["predictions"][:, 20].mean()),
    ("block5_conv1", lambda: (ACTS["block5_conv1"] ** 2).mean()),
    ("DeepDream(block5_conv1) - 2*tv()", lambda: (ACTS["block5_conv1"] ** 2).mean() - 2 * tv()),
    ("'inner/conv':1 + \"predictions\":2", lambda: ch("inner/conv", 1) + ch("predictions", 2)),
    ("l1(input, constant=0.5)", lambda: np.abs(ACTS["input"] - 0.5).sum(axis=(1, 2, 3)).mean()),
    ("Lp(input, 3, -0.25)", lambda: scalar(obj.Lp("input", 3, -0.25)(T))),
])
def test_values(text, expected):
    assert value(text) == pytest.approx(float(expected()), rel=1e-4, abs=1e-6)


def test_parsed_objectives_match_the_library():
    assert parse("block4_conv3:42").description == "channel block4_conv3:42"
    assert parse("block4_conv3:42 - 0.5*block5_conv1:7").description == (
        "channel block4_conv3:42 - 0.5 * channel block5_conv1:7")
    assert parse("block4_conv3:5@3,2").description == "neuron block4_conv3:5 at x=3, y=2"
    assert parse("diversity(block4_conv3)").signature == obj.diversity("block4_conv3").signature
    assert parse("block4_conv3:1 - tv()").layers == {"block4_conv3"}
    assert parse("block4_conv3:1 + predictions:3").layers == {"block4_conv3", "predictions"}


def test_numbers_are_knobs_so_signatures_survive_edits():
    pairs = [
        ("block4_conv3:42", "block4_conv3:7"),
        ("block4_conv3:42 - 0.5*block5_conv1:7", "block4_conv3:1 + 3*block5_conv1:0"),
        ("2*(block4_conv3:1 + block4_conv3:2)/3", "5*(block4_conv3:9 - block4_conv3:8)/7"),
        ("block4_conv3:1@0,0 - 1e-3*tv()", "block4_conv3:4@2,1 - 0.1*tv()"),
        ("alignment(block4_conv3, 2)", "alignment(block4_conv3, 3.5)"),
    ]
    for a, b in pairs:
        assert parse(a).signature == parse(a).signature
        assert parse(a).signature == parse(b).signature, (a, b)
    assert parse("block4_conv3:1").signature != parse("block5_conv1:1").signature
    assert parse("block4_conv3:1").signature != parse("block4_conv3:1@0,0").signature


@pytest.mark.parametrize("text, message, column", [
    ("block4_conv3:42)", "Unexpected ')'", 16),
    ("(block4_conv3:42", "Unexpected end of expression; expected ')'", 17),
    ("block4_conv3:", "expected a channel", 14),
    ("block4_conv3:4.5", "Unexpected '4.5'; expected a channel", 14),
    ("block4_conv3:4@1", "expected ',' between x and y", 17),
    ("block4_conv3:4 $ 2", "Unexpected character '$'", 16),
    ("block4_conv3:4 block5_conv1:1", "Unexpected 'block5_conv1'", 16),
    ("2 * 3", "Expected an objective, not just a number", 1),
    ("", "Expected an objective", 1),
    ("a:1 + * b:2", "Unexpected '*'", 7),
    ("neuron(block4_conv3)", "Invalid call of neuron", 1),
    ("tv(1, 2, 3)", "Invalid call of total_variation", 1),
    ("b:1 + neuron(block4_conv3, -3)", "Received: n_channel=-3", 7),
    ("neuron(block4_conv3, x=1, 5)", "Unexpected '5'; positional arguments must come before keyword", 27),
    ("__import__('os')", "Unknown function '__import__'", 1),
    ("nueron(block4_conv3, 1)", "'nueron' at column 1 in 'nueron(block4_conv3, 1)'. Did you mean 'neuron'?", 1),
    ("b:1 - 1e-3*total_variaton()", "Did you mean 'total_variation'?", 12),
])
def test_syntax_errors_point_at_the_column(text, message, column):
    with pytest.raises(ValueError) as info:
        parse(text)
    lines = str(info.value).split("\n")
    assert message in lines[0]
    assert f"at column {column} in {text!r}" in lines[0]
    assert lines[1] == f"  {text}"
    assert lines[2] == "  " + " " * (column - 1) + "^"


@pytest.mark.parametrize("text, message, column", [
    ("a:1 * b:2", "Cannot multiply two objectives", 5),
    ("a:1 / (b:2 - c:3)", "Cannot divide an objective by an objective", 5),
    ("a:1 + 1", "a constant does not change", 5),
])
def test_algebra_errors_keep_their_type_and_gain_a_position(text, message, column):
    with pytest.raises(TypeError, match=message) as info:
        parse(text)
    assert f"at column {column}" in str(info.value)


def test_nothing_is_evaluated_as_python():
    for text in ("__import__('os').system('false')", "exec('1')", "[1, 2]", "lambda x: 0", "a:1; b:2",
                 "block4_conv3:1 if 1 else 0", "{}", "'a' 'b'"):
        with pytest.raises(ValueError):
            parse(text)
    with pytest.raises(TypeError, match="Expected an expression string"):
        parse(b"a:1")


def test_tokens_keep_names_numbers_and_positions():
    tokens = tokenize("inner/conv:3/2 - 1e-3*x.y")
    assert [(t.kind, t.text, t.pos) for t in tokens] == [
        ("name", "inner/conv", 0), ("op", ":", 10), ("number", "3", 11), ("op", "/", 12),
        ("number", "2", 13), ("op", "-", 15), ("number", "1e-3", 17), ("op", "*", 21), ("name", "x.y", 22),
        ("end", "", 25),
    ]


ODD_LAYERS = ["fc6-3", "conv 1", "fc6", "x"]
ODD_ACTS = {name: RNG.normal(size=(2, 4)).astype(np.float32) for name in ODD_LAYERS}
ODD_T = {name: ops.convert_to_tensor(v) for name, v in ODD_ACTS.items()}.__getitem__


@pytest.mark.parametrize("text, expected", [
    ("fc6-3:1", lambda a: a["fc6-3"][:, 1].mean()),
    ("conv 1:2 - 0.5*fc6-3:0", lambda a: a["conv 1"][:, 2].mean() - 0.5 * a["fc6-3"][:, 0].mean()),
    ("fc6:1 - 3*x:1", lambda a: a["fc6"][:, 1].mean() - 3 * a["x"][:, 1].mean()),
    ("'fc6-3':1", lambda a: a["fc6-3"][:, 1].mean()),
    ("class_logit(fc6-3, 2)", lambda a: a["fc6-3"][:, 2].mean()),
])
def test_known_layer_names_need_no_quotes(text, expected):
    objective = parse(text, layers=ODD_LAYERS)
    assert scalar(objective(ODD_T)) == pytest.approx(float(expected(ODD_ACTS)), rel=1e-5)


def test_unknown_names_with_a_minus_still_mean_minus():
    with pytest.raises(TypeError, match=r"Invalid '-' at column 4 in 'fc7-3:1'.*If 'fc7-3' is a layer name"):
        parse("fc7-3:1", layers=ODD_LAYERS)
