"""The envelope's associated data is the header's RFC 8785 form: the fast path writes rfc8785's own bytes."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.security.channel import MAX_SAFE_INTEGER, associated_data

texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(['\x00\x1f\x7f"\\/', "\u2028é😀"])
integers = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.integers(-(2**70), 2**70)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "v": integers,
            "alg": texts,
            "kid": texts,
            "epk": texts,
            "channel": texts,
            "dir": texts,
            "seq": integers,
            "ts": integers,
            "final": st.booleans(),
        }
    )
)
def test_the_associated_data_is_the_headers_rfc8785_form(header):
    try:
        expected = rfc8785.dumps(header)
    except rfc8785.CanonicalizationError as refused:  # integers it cannot write exactly
        with pytest.raises(type(refused)):
            associated_data(header)
        return
    assert associated_data(header) == expected


def test_a_lone_surrogate_is_refused_as_rfc8785_refuses_it():
    with pytest.raises(rfc8785.CanonicalizationError):
        associated_data({"v": 1, "channel": "\ud800", "seq": 0, "ts": 0, "final": False})
