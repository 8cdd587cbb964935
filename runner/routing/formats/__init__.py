"""One normaliser per alert format. Each module has NAME, ``detect(doc)`` and
``normalise(doc)``; detection asks them in the order of :data:`FORMATS`, most specific first."""
