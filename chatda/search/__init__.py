"""Integrated search: one query fans out to intents, suggestions and the article index legs.

``profiles`` says which sources a request may use and how long it may take, ``engine`` runs
them against one deadline, ``fusion`` merges the document legs, ``services`` wires it all for
the API process. docs/search.md is the contract.
"""
