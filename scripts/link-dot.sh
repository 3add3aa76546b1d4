#!/usr/bin/env bash
# Graphviz without apt: the graphviz-pure wheel ships a self-contained binary that is not
# called `dot`. When the system has no `dot`, put a `dot` link to it inside the venv.
set -eu
venv=${1:-.venv}
if command -v dot >/dev/null 2>&1 && [ "$(command -v dot)" != "$PWD/$venv/bin/dot" ]; then
  exit 0
fi
if [ -x "$venv/bin/graphviz-pure" ]; then
  ln -sf graphviz-pure "$venv/bin/dot"
  echo "graphviz: using the pip-installed graphviz-pure as dot"
fi
