#!/bin/sh
# Container entry point: one image, three jobs.
#
#   serve [FLAGS]    the service (default); flags as `python -m service --help`, settings from SERVICE_*
#   train [FLAGS]    python -m trainer FLAGS      (e.g. train --out /artifacts/mnist --overwrite)
#   export [FLAGS]   python -m exporter FLAGS     (e.g. export /artifacts/mnist --repository /models --name mnist)
#   -FLAG ...        flags alone go to `serve`
#   help             this text; anything else runs as a command (e.g. `python`, `sh`)
#
# `exec` replaces this shell, so the program receives the signals tini forwards (SIGTERM drains the
# service) and its exit status is the container's.
set -eu

command=${1:-serve}
[ $# -gt 0 ] && shift

case "$command" in
    serve) exec python -m service "$@" ;;
    train) exec python -m trainer "$@" ;;
    export) exec python -m exporter "$@" ;;
    -*) exec python -m service "$command" "$@" ;;
    help) sed -n '2,9s/^# \{0,1\}//p' "$0" ;;
    *) exec "$command" "$@" ;;
esac
