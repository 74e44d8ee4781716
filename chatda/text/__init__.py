"""Korean text toolkit: normalization, morphemes, jamo, keyboard layouts, sentences, chunks."""
