#!/usr/bin/env bash
# ci.sh checks the module github.com/secondorder/secondorder/mpi from a clean
# clone: formatting, vet, tidiness, the tests of every package as one process
# (Open MPI's singleton), then every package's tests as MPI jobs of 2 and 3
# processes under mpirun.sh. It needs Go, a C compiler and Open MPI (Debian:
# libopenmpi-dev openmpi-bin), and runs from any working directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
here=$PWD

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The package finds Open MPI through pkg-config (ompi-c). Without pkg-config,
# which Open MPI's Debian packages do not pull in, answer cgo's two queries
# from Open MPI's compiler wrapper.
if ! command -v "${PKG_CONFIG:-pkg-config}" >/dev/null; then
	cat >"$tmp/pkg-config" <<'EOF'
#!/bin/sh
for a; do
	case $a in
	--cflags) exec mpicc --showme:compile ;;
	--libs) exec mpicc --showme:link ;;
	esac
done
exit 1
EOF
	chmod +x "$tmp/pkg-config"
	export PKG_CONFIG=$tmp/pkg-config
fi

# A singleton's MPI_Init starts a local daemon through ssh or rsh unless the
# launcher is the local one (mpirun.sh sets the same for jobs).
export OMPI_MCA_plm=${OMPI_MCA_plm:-isolated}

echo "== gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	echo "gofmt -l lists:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go mod tidy -diff"
go mod tidy -diff

echo "== go vet"
go vet ./...

echo "== go test (singleton)"
go test ./...

# Every package with tests, compiled once and run as the ranks of a job, in
# its own directory as go test would.
mapfile -t pkgs < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{end}}' ./...)
for line in "${pkgs[@]}"; do
	[[ -n $line ]] || continue # a package without tests
	pkg=${line%%$'\t'*}
	dir=${line#*$'\t'}
	bin=$tmp/${pkg//\//_}.test
	echo "== go test -c $pkg"
	go test -c -o "$bin" "$pkg"
	for n in 2 3; do
		echo "== $pkg: mpirun.sh $n"
		# -test.timeout turns a deadlock (ranks that disagree on the
		# collectives) into a failure; timeout stops mpirun if even that
		# hangs.
		(cd "$dir" && timeout 30m "$here/mpirun.sh" "$n" "$bin" -test.timeout=20m)
	done
done
echo "== ok"
