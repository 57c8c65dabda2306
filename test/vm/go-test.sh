#!/usr/bin/env bash
# go-test.sh — `go test`, with every test binary run inside the IPVS VM.
#
#   test/vm/go-test.sh -v ./lvs/...
#   test/vm/go-test.sh -json -run TestFoo ./lvs
#
# It only adds what is easy to get wrong by hand: CGO_ENABLED=0 (the guest
# needs static binaries) and an *absolute* -exec path (go test runs the exec
# program from each package directory, so a relative path breaks).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CGO_ENABLED=0
exec go test -exec "$HERE/vmexec.sh" "$@"
