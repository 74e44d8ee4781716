"""In-process lexical scoring (BM25) for small collections such as the intent catalog."""
