import json

import numpy as np

from shared.runtime import jsonio


def test_encodes_the_compact_json_the_standard_library_would():
    value = {"text": 'é \u2028 "quoted" \\ \n', "n": [1, 2.5, -3, True, None], "nested": {"k": []}}
    encoded = jsonio.dumps(value)
    assert encoded == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsonio.dumps_text(value) == encoded.decode()


def test_values_orjson_refuses_still_encode_without_loss():
    big = 2**70 + 1  # beyond 64 bits: orjson refuses it, the standard library writes it exactly
    for value in ({"id": big}, {1: "a key that is not a string"}, {"score": np.float64(0.25)}):
        assert json.loads(jsonio.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(jsonio.dumps({"id": big}))["id"] == big


def test_non_finite_numbers_become_null():
    assert jsonio.dumps({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'
