# Sourced by the load scripts (collector-load.sh, soak.sh, faults.sh).

# BIN: $POSTMORTEM_BIN when set (to compare two builds), else the release build, built with the
# extra `swift build` flags given.
postmortem_binary() {
    if [ -n "${POSTMORTEM_BIN:-}" ]; then BIN="$POSTMORTEM_BIN"; return; fi
    swift build -c release "$@" --product postmortem >/dev/null
    BIN="$(swift build -c release --show-bin-path)/postmortem"
}

# start_serve DATA OUT ERR: `postmortem serve` on a free port in the background; sets SERVER (its
# pid) and URL (its /submit) once it listens.
start_serve() {
    "$BIN" serve --data "$1" --port 0 >"$2" 2>"$3" &
    SERVER=$!
    for _ in $(seq 1 200); do grep -q "Listening on" "$2" 2>/dev/null && break; sleep 0.05; done
    URL="$(sed -n 's/^Listening on //p' "$2")/submit"
}
