#!/usr/bin/env bash
# bench/device/pack.sh [--dir DIR] [--level N] [--force]
#
# Packs what the GPU machine needs to run Node (it has none): DIR/node.tar.xz (this machine's
# `node` binary, as bin/node) and DIR/node_modules.tar.xz: only the packages the device run loads
# (vitest, tsx, chevrotain, fast-check) and what they need, as bench/device/closure.mjs finds them
# on disk, so webgpu (Dawn), typescript, ts-morph, node-gyp and bench-only peers never travel. DIR
# defaults to .device at the repository root, which this script adds to .git/info/exclude. A stamp
# per archive (node's version and hash; the packed packages' package.json files) makes a rerun free
# until it changes; --force repacks. --level is xz's preset (default 6; 0 is much faster and about 30% larger).
# Prints the sizes and the total a call to the GPU machine would send (DIR plus build/ and the working
# tree), and fails when that is over the 64 MiB a call may send.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

DIR="$ROOT/.device"
LEVEL=6
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --level) LEVEL="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "pack.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

ROOTS=(vitest tsx chevrotain fast-check)

NODE_BIN="$(readlink -f "$(command -v node)")"
[ -x "$NODE_BIN" ] || { echo "pack.sh: node not found on PATH" >&2; exit 1; }
case "$(uname -m)" in
  x86_64) ;;
  *) echo "pack.sh: this machine is $(uname -m); the GPU machine runs x86-64 binaries only" >&2; exit 1 ;;
esac
[ -d node_modules ] || { echo "pack.sh: node_modules is missing (run npm ci first)" >&2; exit 1; }
[ -f build/Release/tessera_cuda.node ] || echo "pack.sh: warning: build/Release/tessera_cuda.node is missing (npm ci builds it); the CUDA runtime will not load on the device" >&2

mkdir -p "$DIR"
if [ "$DIR" = "$ROOT/.device" ] && [ -d .git ]; then
  grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
fi

LIST="$(mktemp)"
trap 'rm -f "$LIST"' EXIT
"$NODE_BIN" bench/device/closure.mjs "${ROOTS[@]}" > "$LIST"

# pack NAME STAMP COMMAND...: DIR/NAME.tar.xz from the tar stream COMMAND writes, unless DIR/NAME.stamp says STAMP.
pack() {
  local name="$1" stamp="$2"
  shift 2
  if [ "$FORCE" = 0 ] && [ -s "$DIR/$name.tar.xz" ] && [ "$(cat "$DIR/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "pack.sh: $name.tar.xz is up to date ($stamp)"
    return
  fi
  local t0=$SECONDS
  rm -f "$DIR/$name.stamp"
  "$@" | xz -T0 "-$LEVEL" > "$DIR/$name.tar.xz.tmp"
  mv "$DIR/$name.tar.xz.tmp" "$DIR/$name.tar.xz"
  echo "$stamp" > "$DIR/$name.stamp"
  echo "pack.sh: packed $name.tar.xz in $((SECONDS - t0)) s (xz -$LEVEL): $stamp"
}

PREFIX="$(dirname "$(dirname "$NODE_BIN")")"
if [ "${NODE_BIN#"$PREFIX"/}" != "bin/node" ]; then
  # A node binary not at <prefix>/bin/node: stage it so the archive always holds bin/node.
  PREFIX="$(mktemp -d)"
  mkdir -p "$PREFIX/bin" && cp "$NODE_BIN" "$PREFIX/bin/node"
fi
pack node "node $("$NODE_BIN" --version) ($(sha256sum "$NODE_BIN" | cut -c1-12))" tar -C "$PREFIX" -cf - bin/node
# The packages' own package.json files (names and versions) identify what would be packed.
pack node_modules "$(wc -l < "$LIST") packages from ${ROOTS[*]} ($(sed 's|$|/package.json|' "$LIST" | xargs cat | sha256sum | cut -c1-12))" tar -cf - -T "$LIST"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
node_b=$(size "$DIR/node.tar.xz")
nm_b=$(size "$DIR/node_modules.tar.xz")
build_b=$(size build)
tree_b=$(git ls-files -z -co --exclude-standard 2>/dev/null | xargs -0 du -cb 2>/dev/null | awk '/\ttotal$/ { s += $1 } END { print s + 0 }')
total=$((node_b + nm_b + build_b + tree_b))
echo "pack.sh: node.tar.xz $(mib "$node_b"), node_modules.tar.xz $(mib "$nm_b"), build/ $(mib "$build_b"), working tree $(mib "$tree_b"): $(mib "$total") of the 64 MiB a device call carries"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "pack.sh: over the 64 MiB a call to the GPU machine may send" >&2
  exit 1
fi
