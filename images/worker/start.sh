#!/usr/bin/env bash
# Container entry: launch ComfyUI, run preflight while it loads, then start the RunPod handler.
# Fails fast (non-zero exit, one clear line) when preflight finds the models missing or misplaced, or when
# ComfyUI exits (RunPod then replaces the worker):
# a worker that cannot render must not take jobs.
set -euo pipefail

# Every line this script writes is one JSON object on schema v1 (docs/logging-schema-v1.json; the events are in
# docs/LOG_EVENTS.md, "Worker start-up"), as the handler's are: an operator's pipeline parses RunPod's worker logs as
# JSON. Built here, in bash alone, not by python: a line must come out when python is missing or broken (the very
# failure it may report), and a failed write must not end the script under `set -e`.
# json_quote TEXT: REPLY = TEXT as a JSON string literal (backslash, quote and every control character escaped).
json_quote() {
  local text=$1 code hex char
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  for code in {1..31}; do
    printf -v hex '%02x' "$code"
    printf -v char "\\x$hex"
    text=${text//"$char"/\\u00$hex}
  done
  REPLY="\"$text\""
}
# utf8_cut TEXT LIMIT: REPLY = TEXT's first LIMIT characters, valid UTF-8 whatever bytes TEXT holds: a byte that starts
# no valid UTF-8 character becomes U+FFFD, as python's decode(errors="replace") makes it. Read byte by byte in the C
# locale, which every system has: the image sets no LANG, and in the C locale ${text:0:64} counts bytes and may cut a
# character in two (an invalid line), while under a UTF-8 locale a byte that is no UTF-8 would go out as it is.
utf8_cut() {
  local LC_ALL=C
  local text=$1 limit=$2 out="" i=0 chars=0 size lead next low high n j
  if [[ "$text" != *[$'\x80'-$'\xff']* ]]; then  # ASCII (every line of start.sh's own): a byte is a character
    REPLY=${text:0:limit}
    return 0  # bare, a return in a trap's handler gives the status of the command the trap interrupted
  fi
  n=${#text}
  while (( i < n && chars < limit )); do
    printf -v lead '%d' "'${text:i:1}"
    size=1 low=128 high=191
    if (( lead >= 194 && lead <= 223 )); then size=2
    elif (( lead >= 224 && lead <= 239 )); then size=3
      (( lead == 224 )) && low=160       # no overlong form
      (( lead == 237 )) && high=159      # no UTF-16 surrogate
    elif (( lead >= 240 && lead <= 244 )); then size=4
      (( lead == 240 )) && low=144
      (( lead == 244 )) && high=143      # nothing above U+10FFFF
    elif (( lead >= 128 )); then size=0  # a continuation byte alone, or a byte UTF-8 never uses
    fi
    j=1
    while (( size > 1 && j < size )); do
      next=-1
      (( i + j < n )) && printf -v next '%d' "'${text:i+j:1}"
      if (( next < low || next > high )); then size=0; break; fi
      low=128 high=191
      (( j++ ))
    done
    if (( size == 0 )); then
      out+=$'\xef\xbf\xbd'
      (( i += 1 ))
    else
      out+=${text:i:size}
      (( i += size ))
    fi
    (( chars += 1 ))
  done
  REPLY=$out
}
# json_or_null NAME LIMIT: REPLY = the variable NAME's value (cut to LIMIT characters) quoted, or null when unset/empty.
json_or_null() {
  local value="${!1:-}"
  if [[ -z "$value" ]]; then REPLY=null; else utf8_cut "$value" "$2"; json_quote "$REPLY"; fi
}
# log_event LEVEL EVENT MESSAGE [DATA-JSON]: one line on stderr. The context is the worker's (STACK, WORKFLOW_VERSION,
# WORKER_IMAGE_TAG from the image and the endpoint); these lines name no job. DATA-JSON is built by the caller from
# numbers only.
log_event() {
  local TZ=UTC0 now="${EPOCHREALTIME:-}" seconds millis ts line
  seconds=${now%%[.,]*}
  millis=${now#"$seconds"}; millis=${millis:1:3}
  [[ "$seconds" =~ ^[0-9]+$ ]] || seconds=-1
  [[ "$millis" =~ ^[0-9]{3}$ ]] || millis=000
  printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' "$seconds"
  line="{\"schema\":\"goldgate.log.v1\",\"ts\":\"$ts.${millis}Z\",\"level\":\"$1\",\"event\":\"$2\""
  line+=",\"component\":\"worker\""
  json_or_null STACK 64; line+=",\"stack\":$REPLY,\"trace_id\":null,\"job_id\":null"
  json_or_null WORKFLOW_VERSION 64; line+=",\"workflow_version\":$REPLY"
  json_or_null WORKER_IMAGE_TAG 256; line+=",\"worker_image_tag\":$REPLY"
  utf8_cut "$3" 4000; json_quote "$REPLY"; line+=",\"message\":$REPLY,\"data\":${4:-null}}"
  printf '%s\n' "$line" >&2 || true
}

# The wait for "handler or ComfyUI, whichever ends first" below needs `wait -n -p` (bash 5.1): on an older bash it
# would fail at once, every time, and the loop would spin. Say so before anything starts.
if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then
  log_event error worker.start.bash_too_old "FATAL: start.sh needs bash 5.1 or newer (wait -n -p); this image has \
bash $BASH_VERSION: use a base image with a newer bash."
  exit 1
fi

PYTHON="${PYTHON:-python}"
COMFY_DIR="${COMFY_DIR:-/comfyui}"
WORKER_PKG="${WORKER_PKG:-goldgate_worker}"
export COMFY_URL="${COMFY_URL:-http://127.0.0.1:8188}"

# ComfyUI runs each workflow's nodes and needs no credential: the R2 keys and RunPod's worker key are the handler's.
# A node that logs or sends its environment (or a crash report that dumps it) must find none, so ComfyUI starts
# without every variable whose name says credential (as the RunPod emulator masks them: SECRET, TOKEN, KEY,
# PASSWORD; PASSPHRASE too). Preflight and the handler keep the environment as it is. The relay below masks the
# value of each of these names in ComfyUI's output (sdk_logs._CREDENTIAL_NAME: keep the two lists the same).
CREDENTIAL_NAMES=()
for NAME in $(compgen -e); do
  case "${NAME^^}" in
    *SECRET*|*TOKEN*|*KEY*|*PASSWORD*|*PASSPHRASE*) CREDENTIAL_NAMES+=("$NAME") ;;
  esac
done

cd "${APP_DIR:-/opt/goldgate}"
# ComfyUI's own output (its stdout and stderr, one pipe) becomes one `comfyui.output` line each, written on stdout by
# the relay in sdk_logs. The relay ignores SIGTERM and SIGINT and ends when the pipe closes (ComfyUI, and whatever it
# started, gone), so ComfyUI's last words (a crash's traceback) still come out after it was stopped. A relay that
# cannot start (no python, a broken package) or that fails leaves the rest of the pipe to `cat`: plain lines, but
# none lost, and ComfyUI neither blocks on a full pipe nobody reads nor fails writing to one nobody holds (bash's own
# loop where the image has no `cat`). That fallback masks nothing: a credential ComfyUI prints then comes out as it
# is (the relay masks the value of every variable CREDENTIAL_NAMES names; `cat` has no way to), so a relay that does
# not start is a broken image to fix, not a state to run in.
relay_comfyui_output() {
  local line
  trap '' TERM INT HUP
  "$PYTHON" -m "$WORKER_PKG.sdk_logs" comfyui-output && return
  if command -v cat >/dev/null 2>&1; then
    exec cat
  fi
  while IFS= read -r line || [[ -n "$line" ]]; do
    printf '%s\n' "$line" || true
  done
}
exec {COMFY_OUT}> >(relay_comfyui_output)
RELAY_PID=$!
# exec in the subshell: $! is ComfyUI's own pid, which the handler watches (COMFY_PID) and the traps signal.
(unset -v "${CREDENTIAL_NAMES[@]}"; exec "$PYTHON" "$COMFY_DIR/main.py" --listen 127.0.0.1 --port 8188 \
  --disable-auto-launch --disable-metadata) >&"$COMFY_OUT" 2>&1 &
# The handler reads it: a ComfyUI that exits while it loads fails the job at once, not after the readiness bound.
export COMFY_PID=$!
# ComfyUI alone writes to the relay: preflight and the handler write their own v1 lines, and the relay ends with
# ComfyUI only when no other process holds the pipe.
exec {COMFY_OUT}>&-
log_event info worker.start.comfyui_launched "start.sh: ComfyUI launched (pid $COMFY_PID); preflight runs while \
it loads." "{\"pid\":$COMFY_PID}"
PREFLIGHT_PID=""
# A pipe nobody writes to: `read -t` on it is a sleep without an external `sleep` (a slim image may have none).
exec {TICK}<> <(:)
# On any exit, stop what still runs and wait for it: in a container the first process's exit ends the rest with
# SIGKILL, which tells ComfyUI nothing. Then give the relay a moment (5 s at most: a process ComfyUI started may
# hold the pipe) to write ComfyUI's last lines: the container's end would cut them off.
stop_children() {
  local pid tick
  for pid in $PREFLIGHT_PID "$COMFY_PID"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  for tick in {1..50}; do
    kill -0 "$RELAY_PID" 2>/dev/null || break
    read -rt 0.1 -u "$TICK" _ || true
  done
}
trap stop_children EXIT
# SIGTERM (RunPod stopping the worker, a scale-down during a cold start) before the handler runs: stop what runs, say
# so, and exit 128 + the signal's number, as a process it ended would. Untrapped, bash exited all the same, but left
# preflight running (orphaned outside a container, SIGKILLed with it inside) and no line said why the worker ended.
stop_starting() {
  log_event info worker.start.stopped "start.sh: $1 before the handler started: stopping ComfyUI and preflight; \
no job was taken." "{\"exit_status\":$2}"
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

if ! run_stoppable "$PYTHON" -m "$WORKER_PKG.preflight" --log-only; then
  # The report names what is missing; it alone says "No checkpoint models appear to be available",
  # and only when the checkpoint folder is empty.
  log_event error worker.start.preflight_failed "FATAL: worker preflight failed (its lines above say why: \
preflight_failed names each model): the image lacks, or misplaces, models its workflows need: rebuild the image \
with the models baked in (images/worker/models.yaml); do not rely on a network volume."
  exit 1
fi

# ComfyUI gone before the handler starts (it crashed while preflight ran: no usable GPU, out of memory): a worker
# without it cannot render, so end the container now and RunPod replaces it, instead of a worker that takes a
# job only to fail it.
if ! kill -0 "$COMFY_PID" 2>/dev/null; then
  COMFY_STATUS=0
  wait "$COMFY_PID" 2>/dev/null || COMFY_STATUS=$?
  log_event error worker.start.comfyui_exited "FATAL: ComfyUI exited (status $COMFY_STATUS) before the worker took \
a job: see its comfyui.output lines above; the container exits so RunPod replaces the worker." \
    "{\"exit_status\":$COMFY_STATUS,\"handler_started\":false}"
  exit 1
fi

# The handler waits for ComfyUI itself (COMFY_READY_TIMEOUT_S), so a slow model load is not a failure.
"$PYTHON" -m "$WORKER_PKG.handler" &
HANDLER_PID=$!
log_event info worker.start.handler_launched "start.sh: preflight passed; the handler started (pid $HANDLER_PID)." \
  "{\"pid\":$HANDLER_PID}"
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
    log_event error worker.start.comfyui_exited "FATAL: ComfyUI exited ($COMFY_EXITED) while the worker ran: see its \
comfyui.output lines above; stopping the handler, and the container exits so RunPod replaces the worker." \
      "{\"exit_status\":$STATUS,\"handler_started\":true}"
    kill -TERM "$HANDLER_PID" 2>/dev/null || true
    continue
  fi
  kill -0 "$HANDLER_PID" 2>/dev/null || break
done
if [[ -n "$COMFY_EXITED" ]]; then
  exit 1
fi
if (( STATUS == 0 )); then
  log_event info worker.start.handler_exited "start.sh: the handler exited (status 0); stopping ComfyUI." \
    '{"exit_status":0}'
else
  log_event error worker.start.handler_exited "start.sh: the handler exited (status $STATUS): see its lines above \
(worker_crashed, worker_cannot_start); stopping ComfyUI, and the container exits so RunPod replaces the worker." \
    "{\"exit_status\":$STATUS}"
fi
exit "$STATUS"
