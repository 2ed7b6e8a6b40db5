"""The simulated models list and model catalog (`apiListModelsOutputPublic`,
`apiListModelCatalogOutput`), with the prices `watcher.core.cost` reads.

The simulator's knowledge bases all use `EMBEDDING_MODEL_UUID`. Its models-list entry carries
no price, on purpose: the watcher then finds it in the catalog by `model_id` (the other
embedding model carries its own). The catalog pages with `limit` and answers no `links`, as
the spec says.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

EMBEDDING_MODEL_UUID = "22653204-79ed-11ef-bf8f-4e013e2ddde4"
EMBEDDING_MODEL_ID = "gte-large-en-v1.5"
EMBEDDING_PRICE = 0.09  # per million input tokens; the spec names no currency

_ZERO_PRICES = {"output_price_per_million": 0}

MODELS: list[dict[str, Any]] = [
    {
        "uuid": EMBEDDING_MODEL_UUID,
        "id": EMBEDDING_MODEL_ID,
        "name": "GTE Large EN v1.5",
        "is_foundational": True,
        "created_at": "2024-10-01T00:00:00Z",
    },
    {
        "uuid": "05700391-7aa8-11ef-bf8f-4e013e2ddde4",
        "id": "all-mini-lm-l6-v2",
        "name": "All MiniLM L6 v2",
        "is_foundational": True,
        "created_at": "2024-10-01T00:00:00Z",
        "pricing": {"input_price_per_million": 0.009, **_ZERO_PRICES},
    },
]

CATALOG: list[dict[str, Any]] = [
    {
        "id": "506a3371-88d0-4047-9212-e2079497ac68",
        "model_id": "llama3.3-70b-instruct",
        "name": "Llama 3.3 70B",
        "type": "text-to-text",
        "pricing": {"input_price_per_million": 0.65, "output_price_per_million": 0.65},
        "scaled_pricing_enabled": False,
    },
    {
        "id": "9b1a6f0e-2a3c-4d5e-8f90-a1b2c3d4e5f6",
        "model_id": EMBEDDING_MODEL_ID,
        "name": "GTE Large EN v1.5",
        "type": "embedding",
        "pricing": {"input_price_per_million": EMBEDDING_PRICE, **_ZERO_PRICES},
        "scaled_pricing_enabled": False,
    },
]


def _int(request: Request, name: str, default: int) -> int:
    try:
        return max(1, int(request.query_params.get(name) or default))
    except ValueError:
        return default


def _meta(total: int, page: int, size: int) -> dict[str, int]:
    return {"total": total, "page": page, "pages": max(1, math.ceil(total / size))}


async def list_models(request: Request) -> Response:
    """`GET /v2/gen-ai/models`: `usecases` (repeated) filters to the embedding models."""
    usecases = request.query_params.getlist("usecases")
    models = MODELS if not usecases or "MODEL_USECASE_KNOWLEDGEBASE" in usecases else []
    page, size = _int(request, "page", 1), min(_int(request, "per_page", 20), 200)
    items = models[(page - 1) * size : page * size]
    url = str(request.url.remove_query_params(["page"]))
    return JSONResponse(
        {
            "models": items,
            "links": {"pages": {"first": url, "last": url}},
            "meta": _meta(len(models), page, size),
        }
    )


async def list_catalog(request: Request) -> Response:
    """`GET /v2/gen-ai/models/catalog`: pages with `limit`; `data` and `meta`, no `links`."""
    page, size = _int(request, "page", 1), _int(request, "limit", 20)
    items = CATALOG[(page - 1) * size : page * size]
    return JSONResponse({"data": items, "meta": _meta(len(CATALOG), page, size)})
