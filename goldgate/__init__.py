"""goldgate: ship a ComfyUI image-generation service on RunPod serverless + Cloudflare to production."""

import sys

# httpx's __init__ imports httpx._main, its own `httpx` command line, whenever click and rich are installed (uvicorn
# and the runpod SDK bring them): click, rich and pygments, about 0.1 s of CPU in every goldgate process that imports
# httpx (each command that talks HTTP, each stack host) for a command line goldgate never runs. Marked absent, httpx
# defines its stub `main` instead and is otherwise the same. A process that imported httpx first keeps its own.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
