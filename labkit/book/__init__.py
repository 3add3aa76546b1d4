"""Building the book: the pages' execution order and their parallel execution into jupyter-cache."""
