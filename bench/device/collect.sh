#!/usr/bin/env bash
# bench/device/collect.sh DIR: copies a GPU run's results (DIR/device-results.json, from the device
# tool's files_at) to bench/results/device/<date>-<gpu>.json, the name run.sh chose there.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="${1:?usage: bench/device/collect.sh DIR (the folder holding device-results.json)}"
[ -s "$DIR/device-results.json" ] || { echo "collect.sh: no $DIR/device-results.json" >&2; exit 1; }
if [ -s "$DIR/results-name.txt" ]; then
  dest="$(cat "$DIR/results-name.txt")"
else
  dest="$(python3 -c 'import json,re,sys; j=json.load(open(sys.argv[1])); print("bench/results/device/%s-%s.json" % (j["date"][:10], re.sub(r"[^a-z0-9-]", "", j["gpu"].lower().replace(" ", "-"))))' "$DIR/device-results.json")"
fi
case "$dest" in bench/results/device/*.json) ;; *) echo "collect.sh: unexpected name '$dest'" >&2; exit 1 ;; esac
mkdir -p bench/results/device
cp "$DIR/device-results.json" "$dest"
echo "collect.sh: wrote $dest"
