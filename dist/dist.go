// Package dist is the communicator seam of data-parallel training: each
// worker runs the network on its shard of a minibatch, and the optimizers of
// package optim combine the sums over examples that they need — gradients,
// factor statistics, the quadratic model's products, loss values — across
// workers through a Comm.
//
// A nil Comm (the zero value of every optimizer's Comm setting) is one
// process: nothing is communicated and nothing changes. Group gives Comms
// between goroutines of one process (tests, and data parallelism over the
// cores of one machine without MPI); the nested module
// github.com/secondorder/secondorder/mpi gives one over Open MPI, between
// processes started by mpirun. Any other transport can implement Comm.
//
// Every rank must make the same calls in the same order with buffers of the
// same lengths (the collective-call contract of MPI): optimizers do, as long
// as every rank steps the same optimizer, with the same settings, on
// records of the same shapes.
package dist

import "fmt"

// Op is a reduction of AllReduce.
type Op int

const (
	// Sum adds the buffers element-wise.
	Sum Op = iota
	// Max takes the element-wise maximum.
	Max
)

// String returns "sum" or "max".
func (o Op) String() string {
	switch o {
	case Sum:
		return "sum"
	case Max:
		return "max"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Comm is a group of Size workers, this one being Rank (0 ≤ Rank < Size).
// Its methods are collective: every rank calls them in the same order with
// buffers of the same length, and each returns when this rank's part is
// done.
//
// Implementations must give every rank the same result bit for bit (the
// reduction in an order that does not depend on the rank), so that workers
// that apply the same update stay identical; Group and the MPI
// communicator do. An error means the group is no longer usable (a
// transport failure); the optimizers return it with the parameters
// unchanged.
type Comm interface {
	// Rank returns this worker's index in [0, Size).
	Rank() int
	// Size returns the number of workers.
	Size() int
	// AllReduce replaces buf, on every rank, by the element-wise reduction
	// op of the buffers of all ranks.
	AllReduce(buf []float64, op Op) error
	// Broadcast replaces buf, on every rank, by the buffer of rank root.
	Broadcast(buf []float64, root int) error
	// BroadcastBytes is Broadcast for bytes: the encoded factorizations
	// that distributed K-FAC sends from the worker that computed them.
	BroadcastBytes(buf []byte, root int) error
}

// Size returns c.Size(), or 1 for a nil Comm.
func Size(c Comm) int {
	if c == nil {
		return 1
	}
	return c.Size()
}

// Rank returns c.Rank(), or 0 for a nil Comm.
func Rank(c Comm) int {
	if c == nil {
		return 0
	}
	return c.Rank()
}

// Parallel reports whether c has more than one worker: whether anything
// needs to be communicated.
func Parallel(c Comm) bool { return c != nil && c.Size() > 1 }
