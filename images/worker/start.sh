#!/usr/bin/env bash
# Container entry: launch ComfyUI, run preflight while it loads, then start the RunPod handler.
# Fails fast (non-zero exit, one clear line) when preflight finds the models missing or misplaced, or when
# ComfyUI exits (RunPod then replaces the worker):
# a worker that cannot render must not take jobs.
set -euo pipefail

# The wait for "handler or ComfyUI, whichever ends first" below needs `wait -n -p` (bash 5.1): on an older bash it
# would fail at once, every time, and the loop would spin. Say so before anything starts.
if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then
  echo "FATAL: start.sh needs bash 5.1 or newer (wait -n -p); this image has bash $BASH_VERSION:" \
       "use a base image with a newer bash." >&2
  exit 1
fi

PYTHON="${PYTHON:-python}"
COMFY_DIR="${COMFY_DIR:-/comfyui}"
WORKER_PKG="${WORKER_PKG:-goldgate_worker}"
export COMFY_URL="${COMFY_URL:-http://127.0.0.1:8188}"

# ComfyUI runs each workflow's nodes and needs no credential: the R2 keys and RunPod's worker key are the handler's.
# A node that logs or sends its environment (or a crash report that dumps it) must find none, so ComfyUI starts
# without every variable whose name says credential (as the RunPod emulator masks them: SECRET, TOKEN, KEY,
# PASSWORD; PASSPHRASE too). Preflight and the handler keep the environment as it is.
CREDENTIAL_NAMES=()
for NAME in $(compgen -e); do
  case "${NAME^^}" in
    *SECRET*|*TOKEN*|*KEY*|*PASSWORD*|*PASSPHRASE*) CREDENTIAL_NAMES+=("$NAME") ;;
  esac
done

cd "${APP_DIR:-/opt/goldgate}"
# exec in the subshell: $! is ComfyUI's own pid, which the handler watches (COMFY_PID) and the traps signal.
(unset -v "${CREDENTIAL_NAMES[@]}"; exec "$PYTHON" "$COMFY_DIR/main.py" --listen 127.0.0.1 --port 8188 \
  --disable-auto-launch --disable-metadata) &
# The handler reads it: a ComfyUI that exits while it loads fails the job at once, not after the readiness bound.
export COMFY_PID=$!
PREFLIGHT_PID=""
# On any exit, stop what still runs and wait for it: in a container the first process's exit ends the rest with
# SIGKILL, which tells ComfyUI nothing.
stop_children() {
  local pid
  for pid in $PREFLIGHT_PID "$COMFY_PID"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
}
trap stop_children EXIT
# SIGTERM (RunPod stopping the worker, a scale-down during a cold start) before the handler runs: stop what runs, say
# so, and exit 128 + the signal's number, as a process it ended would. Untrapped, bash exited all the same, but left
# preflight running (orphaned outside a container, SIGKILLed with it inside) and no line said why the worker ended.
stop_starting() {
  echo "start.sh: $1 before the handler started: stopping ComfyUI and preflight; no job was taken." >&2
  exit "$2"
}
trap 'stop_starting SIGTERM 143' TERM
trap 'stop_starting SIGINT 130' INT

# Runs "$@" in the background and waits for it: a trapped signal ends `wait` at once, where a command in the
# foreground would hold the trap until it ended (preflight with --verify-sha256 reads tens of GB).
run_stoppable() {
  "$@" &
  PREFLIGHT_PID=$!
  local status=0
  wait "$PREFLIGHT_PID" || status=$?
  PREFLIGHT_PID=""
  return "$status"
}

if ! run_stoppable "$PYTHON" -m "$WORKER_PKG.preflight"; then
  # The report names what is missing; it alone says "No checkpoint models appear to be available",
  # and only when the checkpoint folder is empty.
  echo "FATAL: worker preflight failed (see the report above): the image lacks, or misplaces, models its" \
       "workflows need: rebuild the image with the models baked in (images/worker/models.yaml); do not rely" \
       "on a network volume." >&2
  exit 1
fi

# ComfyUI gone before the handler starts (it crashed while preflight ran: no usable GPU, out of memory): a worker
# without it cannot render, so end the container now and RunPod replaces it, instead of a worker that takes a
# job only to fail it.
if ! kill -0 "$COMFY_PID" 2>/dev/null; then
  COMFY_STATUS=0
  wait "$COMFY_PID" 2>/dev/null || COMFY_STATUS=$?
  echo "FATAL: ComfyUI exited (status $COMFY_STATUS) before the worker took a job: see its log above;" \
       "the container exits so RunPod replaces the worker." >&2
  exit 1
fi

# The handler waits for ComfyUI itself (COMFY_READY_TIMEOUT_S), so a slow model load is not a failure.
"$PYTHON" -m "$WORKER_PKG.handler" &
HANDLER_PID=$!
# SIGTERM (RunPod stopping the worker) goes to the handler, whose SDK finishes the job in progress; that
# job needs ComfyUI, so ComfyUI is stopped (EXIT trap) only once the handler has exited. A signal ends
# `wait` early: wait again until the handler is gone, then exit with its status.
trap 'kill -TERM "$HANDLER_PID" 2>/dev/null || true' TERM INT
# ComfyUI exiting while the handler runs leaves a worker that cannot render: stop the handler as RunPod would
# (the job in progress, if any, fails at once without ComfyUI and is reported) and exit non-zero, so the
# container ends and RunPod replaces the worker, instead of an idle worker failing the next job it takes.
# `wait -n -p` needs bash 5.1 or newer; it unsets EXITED when a signal ends the wait.
COMFY_EXITED=""
while true; do
  STATUS=0
  if [[ -z "$COMFY_EXITED" ]]; then
    wait -n -p EXITED "$HANDLER_PID" "$COMFY_PID" || STATUS=$?
  else
    wait "$HANDLER_PID" || STATUS=$?
  fi
  if [[ -z "$COMFY_EXITED" && "${EXITED:-}" == "$COMFY_PID" ]]; then
    COMFY_EXITED="status $STATUS"
    echo "FATAL: ComfyUI exited ($COMFY_EXITED) while the worker ran: see its log above; stopping the" \
         "handler, and the container exits so RunPod replaces the worker." >&2
    kill -TERM "$HANDLER_PID" 2>/dev/null || true
    continue
  fi
  kill -0 "$HANDLER_PID" 2>/dev/null || break
done
if [[ -n "$COMFY_EXITED" ]]; then
  exit 1
fi
exit "$STATUS"
