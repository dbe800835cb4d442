// Package mpi implements dist.Comm over MPI, for data-parallel training
// between processes started by mpirun, on one machine or many. It is a
// nested module with cgo, so that the main module stays pure Go; it is
// written and tested against Open MPI 4.1 (Debian's libopenmpi-dev and
// openmpi-bin) and builds with cgo through pkg-config's ompi-c.
//
// A program calls Init once, hands the Comm to the optimizers' Comm setting,
// and calls Finalize before it exits:
//
//	comm, err := mpi.Init()
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer mpi.Finalize()
//	opt.Comm = comm
//
// and is started with mpirun, for which mpirun.sh gives settings that work
// on one machine, as root in a container too:
//
//	mpi/mpirun.sh 4 ./train -flags
//
// A program started without mpirun is a job of one process (Open MPI's
// singleton), in which every collective returns its buffer unchanged.
//
// # Threads
//
// Go runs a goroutine on whichever OS thread is free, and may move it
// between two calls, so MPI's levels MPI_THREAD_SINGLE and
// MPI_THREAD_FUNNELED (every call from the thread of MPI_Init) do not fit Go
// code. Init requests MPI_THREAD_MULTIPLE and accepts
// MPI_THREAD_SERIALIZED (any thread, one call at a time): the package holds
// a mutex across each of its MPI calls, so it never makes two at once, and
// the mutex orders the memory of successive calls on different threads.
// Open MPI 4.1 provides MULTIPLE, which also lets other code of the process
// call MPI concurrently with this package. Collectives themselves must
// still be issued in the same order on every rank, so a Comm is used by one
// goroutine at a time, like the Comms of dist.Group.
//
// # Identical results on every rank
//
// dist.Comm requires that every rank gets the same bits from AllReduce.
// Sum uses MPI_SUM, whose Open MPI algorithms (reduce then broadcast,
// recursive doubling, ring, Rabenseifner's) either compute each element on
// one rank and send it to the others, or combine the same two partial sums
// on both ranks of a pair, where a+b = b+a exactly. The tests check it with
// sums that depend on the order of the additions, for buffers small and
// large enough for each algorithm; all six allreduce algorithms of Open MPI
// 4.1 (forced by coll_tuned_use_dynamic_rules=1 and
// coll_tuned_allreduce_algorithm=1…6) pass with 2 to 5 ranks. The sum may
// differ in its last bits from dist.Group's, which adds in rank order, and
// between jobs of different sizes or Open MPI versions. Max uses an op of
// this package with the semantics of Go's max (see AllReduce), commutative
// and associative, so that every order of combination gives the same bits.
//
// # Long buffers
//
// MPI counts are C ints. AllReduce, Broadcast and BroadcastBytes split
// longer buffers into chunks of at most 2³¹−1 elements (16 GiB of float64s)
// and make one call per chunk; since all are element-wise, the result is
// that of one call. A zero-length buffer makes no MPI call.
//
// # Errors
//
// Init sets MPI_ERRORS_RETURN on MPI_COMM_WORLD, so a failing call returns
// an error with MPI_Error_string's text rather than abort the job; as
// dist.Comm says, the communicator is not usable after one. Calls that
// break the collective contract (ranks calling different collectives, or
// with different lengths) are not detected and may hang or corrupt the
// buffers. Only Abort stops every rank of a job when one cannot go on.
package mpi
