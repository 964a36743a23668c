# Sourced by deploy/test.sh and deploy/demo.sh: `venv_install ARGS...` installs ARGS (pip's arguments, e.g. -e '.[dev]')
# into ./.venv, which must exist.
#
# With uv (Astral's installer, from PyPI, put into .venv by pip first) when it can be had: it installs the ~90
# packages of the dev tools in about 3 CPU-seconds where pip takes 20-25 (measured on a 2-core VM, warm caches),
# and that install runs in every fresh checkout and in the tests that make one. uv reads its own settings, not
# pip's: an index mirror named in PIP_INDEX_URL/PIP_EXTRA_INDEX_URL is passed on (uv's own UV_INDEX_URL/
# UV_EXTRA_INDEX_URL win; one set only in pip.conf is not read). Where uv cannot be installed or
# fails (no route to its index), pip installs instead, as before: ENERGY_AGENT_PIP=1 asks for pip outright.
#
# --no-compile (pip): Python compiles what runs, on first import, not every file of every package (about a third of
# a fresh pip install's CPU); uv does not compile unless asked.
venv_install() {
  if [ "${ENERGY_AGENT_PIP-}" != 1 ]; then
    [ -x .venv/bin/uv ] || .venv/bin/python -m pip install -q --no-compile uv >/dev/null 2>&1 || true
    if [ -x .venv/bin/uv ]; then
      local index=()
      [ -n "${UV_INDEX_URL-}" ] || [ -z "${PIP_INDEX_URL-}" ] || index+=(--index-url "$PIP_INDEX_URL")
      [ -n "${UV_EXTRA_INDEX_URL-}" ] || [ -z "${PIP_EXTRA_INDEX_URL-}" ] || index+=(--extra-index-url "$PIP_EXTRA_INDEX_URL")
      if .venv/bin/uv pip install --quiet --python .venv/bin/python "${index[@]}" "$@"; then
        return 0
      fi
      echo "uv could not install; installing with pip instead" >&2
    fi
  fi
  # pip 21.3 or later installs a pyproject project editable (PEP 660); an older one is upgraded first
  .venv/bin/python -c 'import pip, sys; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))' \
    || .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --no-compile "$@"
}
