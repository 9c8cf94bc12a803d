#!/usr/bin/env bash
# Register every Kafka Connect sink config in $CONNECTORS_DIR with Connect.
#
# Waits until Connect's REST API answers, then PUTs each file's "config" object
# to /connectors/<name>/config. PUT creates a connector or replaces its config,
# so running this again after editing connectors/*.json updates them in place.
# ${env:...} placeholders in the configs are sent as they are: the Connect
# workers resolve them from their own environment.
#
# Environment:
#   CONNECT_URL           Connect's REST API (default http://connect:8083)
#   CONNECTORS_DIR        folder of {"name": ..., "config": {...}} files (default /opt/momentum/connectors)
#   CONNECT_WAIT_SECONDS  how long to wait for Connect to answer (default 300)
#   CONNECT_RETRY_DELAY   seconds between tries (default 2)
#   CONNECT_PUT_ATTEMPTS  tries per connector while Connect rebalances (409) or fails (5xx) (default 15)
#
# Needs bash, curl and jq. Exits non-zero if any connector was not accepted.
set -euo pipefail

CONNECT_URL="${CONNECT_URL:-http://connect:8083}"
CONNECTORS_DIR="${CONNECTORS_DIR:-/opt/momentum/connectors}"
CONNECT_WAIT_SECONDS="${CONNECT_WAIT_SECONDS:-300}"
CONNECT_RETRY_DELAY="${CONNECT_RETRY_DELAY:-2}"
CONNECT_PUT_ATTEMPTS="${CONNECT_PUT_ATTEMPTS:-15}"

log() { printf 'register-connectors: %s\n' "$*" >&2; }

wait_for_connect() {
  local deadline=$((SECONDS + CONNECT_WAIT_SECONDS))
  until curl -fsS -o /dev/null --max-time 5 "$CONNECT_URL/connectors" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "Connect at $CONNECT_URL did not answer within ${CONNECT_WAIT_SECONDS}s"
      return 1
    fi
    sleep "$CONNECT_RETRY_DELAY"
  done
  log "Connect at $CONNECT_URL is up"
}

# PUT one file's config; prints nothing, logs the outcome, returns non-zero on failure.
register() {
  local file=$1 name config path status="" attempt body
  if ! name=$(jq -er '.name | strings' "$file") || ! config=$(jq -ec '.config | objects' "$file"); then
    log "$file: expected {\"name\": \"...\", \"config\": {...}}"
    return 1
  fi
  if [[ "$(jq -r --arg n "$name" '.config.name // $n' "$file")" != "$name" ]]; then
    log "$file: config.name differs from name \"$name\""
    return 1
  fi
  path="$CONNECT_URL/connectors/$(jq -rn --arg n "$name" '$n | @uri')/config"
  body=$(mktemp)
  for ((attempt = 1; attempt <= CONNECT_PUT_ATTEMPTS; attempt++)); do
    status=$(printf '%s' "$config" | curl -sS -o "$body" -w '%{http_code}' --max-time 30 \
      -X PUT -H 'Content-Type: application/json' --data-binary @- "$path" || true)
    case "$status" in
      201) log "$name: created from $(basename "$file")"; rm -f "$body"; return 0 ;;
      200) log "$name: updated from $(basename "$file")"; rm -f "$body"; return 0 ;;
      409 | 5?? | 000)
        # 409: Connect is rebalancing; 5xx or no answer: it may still be starting.
        log "$name: Connect answered ${status}, trying again ($attempt/$CONNECT_PUT_ATTEMPTS)"
        sleep "$CONNECT_RETRY_DELAY"
        ;;
      *)
        log "$name: rejected with HTTP $status: $(cat "$body")"
        rm -f "$body"
        return 1
        ;;
    esac
  done
  log "$name: not registered after $CONNECT_PUT_ATTEMPTS attempts (last HTTP $status: $(cat "$body"))"
  rm -f "$body"
  return 1
}

main() {
  shopt -s nullglob
  local files=("$CONNECTORS_DIR"/*.json) file failed=0
  if ((${#files[@]} == 0)); then
    log "no connector configs (*.json) in $CONNECTORS_DIR"
    return 1
  fi
  wait_for_connect
  for file in "${files[@]}"; do
    register "$file" || failed=1
  done
  if ((failed)); then
    log "some connectors were not registered"
    return 1
  fi
  log "${#files[@]} connector(s) registered"
}

main "$@"
