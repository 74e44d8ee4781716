"""As-you-type suggestions: an in-process index matched on 2-set keystrokes."""
