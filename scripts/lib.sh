# Shared by the scripts that run latchkey on this machine (sourced, not run):
#   . "$(dirname "$0")/lib.sh"
# The one cargo target directory every script and the test command share, free ports, waiting
# for a server, CPU pinning, wrk's figures, and the sign-up and logins the measurements start from.

# One target directory across scripts, runs and clones: two cores make cold builds expensive.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey/target}"

# The password every script's accounts use.
LATCHKEY_SCRIPT_PASSWORD="correct horse battery"

# free_port: a port on 127.0.0.1 nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL: waits up to 10 s for URL to answer 2xx; fails the script if it never does.
wait_for() {
  for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$(basename "$0"): $1 never answered" >&2
  exit 1
}

# pin_cpus: with two or more cores, sets server_cpu and client_cpu (command prefixes) so the
# server gets CPU 0 and the load generator CPU 1, and they do not fight for cores.
pin_cpus() {
  server_cpu=() client_cpu=()
  if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
  fi
}

# need_wrk: installs wrk where it is missing.
need_wrk() {
  command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
}

# to_ms: one of wrk's latency figures (on stdin: 850.00us, 1.20ms, 2.00s) in milliseconds.
to_ms() {
  awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f", v }'
}

# wrk_figure FILE WHAT: from a `wrk --latency` report, requests/s (WHAT=rps) or a percentile in
# milliseconds (WHAT=50%, 99%, ...).
wrk_figure() {
  case $2 in
    rps) awk '/Requests\/sec/ { print $2 }' "$1" ;;
    *) awk -v p="$2" '$1 == p { print $2 }' "$1" | to_ms ;;
  esac
}

# sign_up BASE USERNAME: makes the account, with the scripts' password.
sign_up() {
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$LATCHKEY_SCRIPT_PASSWORD\"}" "$1/v1/accounts"
}

# token_field BASE USERNAME FIELD: one field (access_token, refresh_token, ...) of a fresh
# token login's answer.
token_field() {
  curl -fsS --data-urlencode grant_type=password --data-urlencode "username=$2" \
    --data-urlencode "password=$LATCHKEY_SCRIPT_PASSWORD" "$1/v1/token" \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['$3'])"
}

# session_cookie BASE USERNAME: the name=value of a fresh cookie login's session cookie.
session_cookie() {
  curl -fsS -o /dev/null -D - -H 'content-type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$LATCHKEY_SCRIPT_PASSWORD\"}" "$1/v1/session" \
    | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/Ip' | head -n1
}
