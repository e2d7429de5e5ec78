# Sourced by scripts/demo and .ci/run: a local virtual environment with the whole stack.
# torch is pinned here, in the same pip command as everything else, so pip never goes looking
# for a (multi-GB, CUDA) build of its own; requirements.txt leaves torch to ComfyUI users.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UNPAIRED_EDIT_VENV:-$ROOT/.venv}"
TORCH_PIN="${UNPAIRED_EDIT_TORCH:-torch==2.13.0}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import unpaired_edit, torch, diffusers, pytest" 2>/dev/null; then
    "$VENV/bin/pip" install -q "$TORCH_PIN" -e "$ROOT[dev]"
fi
PY="$VENV/bin/python"
