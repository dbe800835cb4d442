#!/usr/bin/env bash
# mpirun.sh runs an MPI job of N processes of a program on this machine,
# with Open MPI 4.1 settings that work as root in a container (Docker, CI)
# as well as for a user on a workstation, and keep Open MPI's warnings out
# of the output:
#
#	mpi/mpirun.sh N program [args...]
#
# Each rank gets OPENBLAS_NUM_THREADS=1 and GOMAXPROCS = max(1, cores/N)
# unless the environment sets them, so that N ranks share the cores rather
# than each spreading over all of them. Other mpirun flags, or several
# hosts, need mpirun itself; OMPI_MCA_* variables of the environment
# override the settings below (mpirun flags override those).
set -euo pipefail

if (($# < 2)) || [[ ! $1 =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 N program [args...]" >&2
	exit 2
fi
n=$1
shift

export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
cores=$(nproc)
export GOMAXPROCS=${GOMAXPROCS:-$((cores / n > 1 ? cores / n : 1))}

# Root: mpirun refuses to run as root unless both variables are set (they
# are what --allow-run-as-root sets, and are ignored for other users).
if ((EUID == 0)); then
	export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
	export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
fi

# Launch the ranks on this machine without ssh or rsh, which a container may
# lack (mpirun, and even a singleton's MPI_Init, fail without an agent).
export OMPI_MCA_plm=${OMPI_MCA_plm:-isolated}
# Shared memory between the ranks, through the ob1 messaging layer: no
# probing of UCX, libfabric, InfiniBand or TCP interfaces.
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
# Large messages through the shared-memory segments rather than by
# process_vm_readv (CMA), which containers without CAP_SYS_PTRACE forbid:
# there the default fails at the first large message.
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
# Allow more ranks than cores (3 ranks on 2 cores in CI), and do not bind
# ranks to cores: a Go process runs several threads (garbage collector,
# cgo calls), and binding fails or warns where cgroups limit the CPUs.
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_hwloc_base_binding_policy=${OMPI_MCA_hwloc_base_binding_policy:-none}

exec mpirun -np "$n" "$@"
