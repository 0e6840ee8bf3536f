#!/usr/bin/env bash
# Container entry: launch ComfyUI, run preflight while it loads, then start the RunPod handler.
# Fails fast (non-zero exit, one clear line) when preflight finds the models missing or misplaced:
# a worker that cannot render must not take jobs.
set -euo pipefail

PYTHON="${PYTHON:-python}"
COMFY_DIR="${COMFY_DIR:-/comfyui}"
WORKER_PKG="${WORKER_PKG:-goldgate_worker}"
export COMFY_URL="${COMFY_URL:-http://127.0.0.1:8188}"

cd "${APP_DIR:-/opt/goldgate}"
"$PYTHON" "$COMFY_DIR/main.py" --listen 127.0.0.1 --port 8188 --disable-auto-launch --disable-metadata &
# The handler reads it: a ComfyUI that exits while it loads fails the job at once, not after the readiness bound.
export COMFY_PID=$!
trap 'kill "$COMFY_PID" 2>/dev/null && wait "$COMFY_PID" 2>/dev/null || true' EXIT

if ! "$PYTHON" -m "$WORKER_PKG.preflight"; then
  # The report names what is missing; it alone says "No checkpoint models appear to be available",
  # and only when the checkpoint folder is empty.
  echo "FATAL: worker preflight failed (see the report above): the image lacks, or misplaces, models its" \
       "workflows need: rebuild the image with the models baked in (images/worker/models.yaml); do not rely" \
       "on a network volume." >&2
  exit 1
fi

# The handler waits for ComfyUI itself (COMFY_READY_TIMEOUT_S), so a slow model load is not a failure.
"$PYTHON" -m "$WORKER_PKG.handler" &
HANDLER_PID=$!
# SIGTERM (RunPod stopping the worker) goes to the handler, whose SDK finishes the job in progress; that
# job needs ComfyUI, so ComfyUI is stopped (EXIT trap) only once the handler has exited. A signal ends
# `wait` early: wait again until the handler is gone, then exit with its status.
trap 'kill -TERM "$HANDLER_PID" 2>/dev/null || true' TERM INT
while true; do
  HANDLER_STATUS=0
  wait "$HANDLER_PID" || HANDLER_STATUS=$?
  kill -0 "$HANDLER_PID" 2>/dev/null || break
done
exit "$HANDLER_STATUS"
