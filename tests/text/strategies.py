"""Hypothesis strategies for Korean text shared by the text and suggest tests."""

from hypothesis import strategies as st

syllables = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
ascii_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)

hangul_text = st.text(st.one_of(syllables, st.just(" ")), max_size=40)
"""Complete syllables and spaces."""
hangul_ascii_text = st.text(st.one_of(syllables, ascii_printable), max_size=40)
"""Complete syllables, spaces and printable ASCII."""
any_text = st.text(st.characters(exclude_categories=()), max_size=200)
"""Anything, lone surrogates and control characters included."""
