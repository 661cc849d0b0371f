#!/usr/bin/env bash
# Runs every test of the repository on this machine: installs redis-server
# and chromium when they are missing (the rate limiter's tests need a real
# Redis, the status page's browser test a real browser), runs go vet and go
# test -race, and ends with every skipped test and its reason, every
# failure, and a last line "N passed, N failed, N skipped".
#
#   ./test.sh                      go vet ./... and go test -race ./...
#   ./test.sh -short               without the end-to-end scenarios
#   ./test.sh ./evaluators/...     some packages only
#   ./test.sh -run TestCodec ./internal/bus/
#
# Arguments go to go test. Those naming packages (./..., ./dir, or an import
# path of this module) also go to go vet; without any, both use ./... . The
# exit status is non-zero when vet or any test failed.
set -uo pipefail
cd "$(dirname "$0")"

module=github.com/operator-dev/operator

die() {
  echo "test.sh: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# install_pkg CMD PACKAGE WHY installs the Debian package that provides CMD.
install_pkg() {
  local cmd=$1 pkg=$2 why=$3
  echo "test.sh: $cmd is not on PATH; installing $pkg with apt-get"
  command -v apt-get >/dev/null 2>&1 ||
    die "cannot install $pkg: apt-get is not available. Install $pkg ($why) so $cmd is on PATH, then run ./test.sh again"
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    die "cannot install $pkg: installing needs root and sudo is not available. Run 'apt-get install $pkg' as root, then ./test.sh again"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null ||
    die "installing $pkg with apt-get failed (see above). Install it so $cmd is on PATH, then run ./test.sh again"
  command -v "$cmd" >/dev/null 2>&1 ||
    die "apt-get installed $pkg but $cmd is not on PATH"
}

command -v go >/dev/null 2>&1 ||
  die "go is not on PATH: install Go $(sed -n 's/^go //p' go.mod) or newer (https://go.dev/dl/), then run ./test.sh again"
command -v redis-server >/dev/null 2>&1 ||
  install_pkg redis-server redis-server "https://redis.io/docs/latest/operate/oss_and_stack/install/"
command -v chromium >/dev/null 2>&1 ||
  install_pkg chromium chromium "Debian's chromium package, for the status page's browser test"
echo "go: $(go version)"
echo "redis-server: $(redis-server --version)"
echo "chromium: $(chromium --version 2>/dev/null)"

# Tests that need redis-server, chromium or the go tool fail instead of
# skipping when CI is "true", so a missing tool cannot pass for a green run.
export CI=true

# Split the arguments: go vet takes the packages only, go test takes all.
pkgs=()
prev=
for arg in "$@"; do
  case $prev in
    # flags whose value may look like a package
    -coverpkg | -coverprofile | -cpuprofile | -memprofile | -blockprofile | -mutexprofile | -trace | -outputdir | -o | -exec) ;;
    *)
      case $arg in
        . | ./* | ../* | "$module" | "$module"/*) pkgs+=("$arg") ;;
      esac
      ;;
  esac
  prev=$arg
done
test_args=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  pkgs=(./...)
  test_args+=(./...)
fi

tmp=$(mktemp -d) || die "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/testsummary" ./internal/testsummary || die "cannot build internal/testsummary"

failed_steps=()
echo "== go vet ${pkgs[*]}"
go vet "${pkgs[@]}" || failed_steps+=(-fail "go vet ${pkgs[*]}")

echo "== go test -race ${test_args[*]}"
"$tmp/testsummary" ${failed_steps[@]+"${failed_steps[@]}"} -- go test -json -race "${test_args[@]}"
