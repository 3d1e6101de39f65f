#!/usr/bin/env bash
# The daily OwnLens run, for cron (deploy/cron/ownlens.cron) or any scheduler: build the features of DAY (data before
# it: run it after midnight UTC for yesterday's data), score every model with its production version, and monitor
# each (drift report under $OWNLENS_HOME/reports/drift/), then bring the running A/B tests' readouts up to date. Retraining is the weekly job: `ownlens-ml run --models-only
# --skip-features`. Each step replaces what it wrote for DAY, so a failed run is simply run again.
#
#   deploy/daily.sh [DAY]        (DAY: YYYY-MM-DD, default today in UTC; the DSN from OWNLENS_DSN)
#
# Exit status: the first failing step's (the CLI's documented codes); every model is tried before it exits.
set -uo pipefail

day="${1:-$(date -u +%F)}"
cli="${OWNLENS_CLI:-ownlens-ml}"
log() { printf '{"ts": "%s", "step": "%s", "status": "%s"}\n' "$(date -u +%FT%TZ)" "$1" "$2"; }

"$cli" features build --date "$day" || { status=$?; log "features $day" "failed ($status)"; exit "$status"; }
log "features $day" ok
models="$("${OWNLENS_PYTHON:-python}" -c 'from ownlens.ml.models import names; print(" ".join(names()))')" || exit 1
failed=0
for model in $models; do
    "$cli" predict "$model" --date "$day" --json > /dev/null
    status=$?
    if [ "$status" -ne 0 ]; then
        log "predict $model $day" "failed ($status)"; [ "$failed" -eq 0 ] && failed=$status; continue
    fi
    "$cli" monitor "$model" --date "$day" --report > /dev/null
    status=$?
    case $status in
        0) log "$model $day" ok ;;
        3) log "$model $day" "scored; nothing to monitor yet (no earlier date to compare with)" ;;
        *) log "monitor $model $day" "failed ($status)"; [ "$failed" -eq 0 ] && failed=$status ;;
    esac
done
# the running A/B tests' readouts, so the console shows them current at once (each only if its data changed)
if "$cli" abtest refresh --json > /dev/null; then log "abtest readouts $day" ok
else status=$?; log "abtest readouts $day" "failed ($status)"; [ "$failed" -eq 0 ] && failed=$status; fi
exit "$failed"
