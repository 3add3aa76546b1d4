"""labkit.view: what the book shows a reader, as opposed to what the cluster does.

* ``labkit.view.diagrams``       - the book's figures, drawn from code (``labkit diagrams``)
* ``labkit.view.selfcheck``      - self-checking exercises at the end of the chapters
* ``labkit.view.cluster_view``   - a live ipywidgets view of a cluster's nodes and pods
* ``labkit.view.book_extension`` - a small Sphinx extension the book build loads

Submodules are imported on use, so ``import labkit.view`` costs nothing.
"""
