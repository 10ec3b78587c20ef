# Sourced by the GPU scripts (gpu_session.sh, gpu_train_variants.sh, gpu_probe.sh, gpu_graphs.sh,
# gpu_chunks.sh) after they set W (a scratch folder that exists): the environment, the carried wheels, and
# BACKBONE: with UPCAST set, that checkpoint (e.g. the shipped fp16 weights) saved as fp32 in
# $W/model-fp32; otherwise all-MiniLM-L6-v2 in fp32, rebuilt from the carried fp16 copy unless
# BACKBONE is set.
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export TOKENIZERS_PARALLELISM=true
# bm25s imports JAX when present, and JAX grabs 75% of GPU memory per process by default:
# with two trainings side by side that ran the card out of memory (first call, 2026-11-26).
export XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_PLATFORMS=cpu
if ! python3 -c "import bm25s, Stemmer, ir_measures, datasets" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/${SRC:-src}${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'st', st.__version__, 'cuda', torch.cuda.is_available())"

if [ -n "${UPCAST:-}" ]; then
    BACKBONE=$W/model-fp32
    python3 - "$UPCAST" "$BACKBONE" <<'PY' || exit 1
import sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
src, dst = sys.argv[1:]
AutoModelForSequenceClassification.from_pretrained(src, dtype=torch.float32).save_pretrained(dst)
AutoTokenizer.from_pretrained(src).save_pretrained(dst)
PY
elif [ -z "${BACKBONE:-}" ]; then
    BACKBONE=$W/minilm
    python3 - "${BACKBONE16:-.gpu/minilm16}" "$BACKBONE" <<'PY' || exit 1
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True)
for f in src.iterdir():
    if f.is_file() and f.suffix != ".safetensors":
        shutil.copy(f, dst / f.name)
weights = load_file(src / "model16.safetensors")
save_file({k: v.float().contiguous() for k, v in weights.items()}, dst / "model.safetensors")
PY
fi
