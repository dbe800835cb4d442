package mpi

/*
#cgo pkg-config: ompi-c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <mpi.h>

// The predefined handles of Open MPI are macros over the addresses of
// globals, which cgo cannot name: these wrappers name them in C.

static int mpiInitThread(int required, int *provided) {
	return MPI_Init_thread(NULL, NULL, required, provided);
}

static int mpiAllreduceSum(void *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

// maxGo is Go's max of two float64s (NaN if either is, +0 over -0), made
// commutative and associative for NaNs too (the NaN of larger bits), so that
// the result does not depend on the order in which MPI combines buffers.
static inline double maxGo(double x, double y) {
	if (x != x || y != y) {
		if (x == x) return y;
		if (y == y) return x;
		uint64_t bx, by;
		memcpy(&bx, &x, 8);
		memcpy(&by, &y, 8);
		return bx > by ? x : y;
	}
	if (x != y) return x > y ? x : y;
	return (x == 0 && signbit(x)) ? y : x;
}

static void maxGoOp(void *in, void *inout, int *len, MPI_Datatype *dt) {
	const double *a = in;
	double *b = inout;
	for (int i = 0; i < *len; i++) b[i] = maxGo(a[i], b[i]);
}

static MPI_Op maxOp = MPI_OP_NULL;

static int mpiAllreduceMax(void *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, maxOp, MPI_COMM_WORLD);
}

static int mpiWorldSetup(int *rank, int *size) {
	int rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	if (rc != MPI_SUCCESS) return rc;
	if (maxOp == MPI_OP_NULL) {
		rc = MPI_Op_create(maxGoOp, 1, &maxOp);
		if (rc != MPI_SUCCESS) return rc;
	}
	rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
	if (rc != MPI_SUCCESS) return rc;
	return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static int mpiBcast(void *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_DOUBLE, root, MPI_COMM_WORLD);
}

static int mpiBcastBytes(void *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_BYTE, root, MPI_COMM_WORLD);
}

static int mpiBarrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

static int mpiAbort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

static int mpiOpFree(void) {
	if (maxOp == MPI_OP_NULL) return MPI_SUCCESS;
	return MPI_Op_free(&maxOp);
}

static void mpiErrorString(int code, char *s) {
	int n = 0;
	if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) n = 0;
	s[n] = 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/secondorder/secondorder/dist"
)

var _ dist.Comm = (*Comm)(nil)

// maxCount is the largest count of one MPI call: MPI counts are C ints.
// Longer buffers are reduced or broadcast in chunks of maxCount elements.
// Tests lower it to exercise the chunking.
var maxCount = math.MaxInt32

// The state of the package, guarded by mu. mu is also held across every MPI
// call, so that the library never sees two concurrent calls from this
// package whatever thread level it provides.
var (
	mu        sync.Mutex
	world     *Comm
	finalized bool
	owned     bool // whether Init called MPI_Init_thread (else MPI was already initialized)
)

// Comm is the communicator of all the processes of an MPI job
// (MPI_COMM_WORLD). It implements dist.Comm. Its methods are collective:
// every rank calls them in the same order with buffers of the same length.
// They lock a mutex around each MPI call, so they may be called from any
// goroutine, but calls from concurrent goroutines have no order that all
// ranks could agree on: use a Comm from one goroutine at a time.
type Comm struct {
	rank, size int
}

// Init initializes MPI and returns the communicator of all the processes of
// the job. A process started without mpirun is a singleton job of size 1.
//
// Init requests MPI_THREAD_MULTIPLE and accepts MPI_THREAD_SERIALIZED: the
// Comm serializes its own calls, and a goroutine may move between OS threads
// between two calls, which SERIALIZED allows and FUNNELED and SINGLE do not;
// Init returns an error (after finalizing MPI) if the library provides less.
// Under SERIALIZED, other code of the process must not call MPI while a
// Comm method runs.
//
// Init sets the error handler of MPI_COMM_WORLD to MPI_ERRORS_RETURN, so
// that failing calls return errors rather than abort the job.
//
// Calling Init again returns the same Comm; calling it after Finalize
// returns an error, since MPI cannot be initialized twice. If MPI was
// already initialized by other code of the process, Init uses it and
// Finalize leaves it to that code.
func Init() (*Comm, error) {
	mu.Lock()
	defer mu.Unlock()
	if world != nil {
		return world, nil
	}
	if finalized {
		return nil, errors.New("mpi: Init after Finalize")
	}
	var flag C.int
	if rc := C.MPI_Finalized(&flag); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Finalized", rc)
	}
	if flag != 0 {
		finalized = true
		return nil, errors.New("mpi: Init after MPI was finalized")
	}
	if rc := C.MPI_Initialized(&flag); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Initialized", rc)
	}
	var provided C.int
	if flag == 0 {
		if rc := C.mpiInitThread(C.MPI_THREAD_MULTIPLE, &provided); rc != C.MPI_SUCCESS {
			return nil, mpiError("MPI_Init_thread", rc)
		}
		owned = true
	} else if rc := C.MPI_Query_thread(&provided); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Query_thread", rc)
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		err := fmt.Errorf("mpi: MPI provides thread level %s, want MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE", threadLevel(provided))
		if owned {
			C.MPI_Finalize()
			finalized = true
		}
		return nil, err
	}
	var rank, size C.int
	if rc := C.mpiWorldSetup(&rank, &size); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_COMM_WORLD setup", rc)
	}
	world = &Comm{rank: int(rank), size: int(size)}
	return world, nil
}

// Finalize finalizes MPI, after which no Comm may be used (their methods
// return errors) and Init returns an error. Every rank must call it, after
// its last collective. It does nothing before Init or after a first
// Finalize, and does not finalize MPI if Init found it initialized by other
// code.
func Finalize() error {
	mu.Lock()
	defer mu.Unlock()
	if world == nil {
		return nil
	}
	world = nil
	finalized = true
	var err error
	if rc := C.mpiOpFree(); rc != C.MPI_SUCCESS {
		err = mpiError("MPI_Op_free", rc)
	}
	if owned {
		if rc := C.MPI_Finalize(); rc != C.MPI_SUCCESS && err == nil {
			err = mpiError("MPI_Finalize", rc)
		}
	}
	return err
}

// Rank returns the rank of this process in [0, Size).
func (c *Comm) Rank() int { return c.rank }

// Size returns the number of processes of the job.
func (c *Comm) Size() int { return c.size }

// AllReduce replaces buf, on every rank, by the element-wise sum (dist.Sum)
// or maximum (dist.Max) of the buffers of all ranks, with MPI_Allreduce in
// place. Sums use MPI_SUM. Maxima are those of Go's max, as in dist.Group
// (NaN if any rank has a NaN, +0 over -0), by an MPI op of this package:
// MPI_MAX of Open MPI drops a NaN or keeps -0 depending on the order in
// which it combines the ranks. Every rank gets the same bits: see the
// package documentation. It panics for another op. Buffers longer than
// MPI's int counts are reduced in chunks.
func (c *Comm) AllReduce(buf []float64, op dist.Op) error {
	if op != dist.Sum && op != dist.Max {
		panic(fmt.Sprintf("mpi: AllReduce with %v, want sum or max", op))
	}
	return chunked(c, "MPI_Allreduce", buf, func(p unsafe.Pointer, n C.int) C.int {
		if op == dist.Sum {
			return C.mpiAllreduceSum(p, n)
		}
		return C.mpiAllreduceMax(p, n)
	})
}

// Broadcast replaces buf, on every rank, by the buffer of rank root, with
// MPI_Bcast. It panics unless 0 ≤ root < Size. Buffers longer than MPI's int
// counts are broadcast in chunks.
func (c *Comm) Broadcast(buf []float64, root int) error {
	if root < 0 || root >= c.size {
		panic(fmt.Sprintf("mpi: Broadcast from root %d in a job of %d", root, c.size))
	}
	return chunked(c, "MPI_Bcast", buf, func(p unsafe.Pointer, n C.int) C.int {
		return C.mpiBcast(p, n, C.int(root))
	})
}

// BroadcastBytes replaces buf, on every rank, by the buffer of rank root,
// with MPI_Bcast of MPI_BYTE. It panics unless 0 ≤ root < Size. Buffers
// longer than MPI's int counts are broadcast in chunks.
func (c *Comm) BroadcastBytes(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		panic(fmt.Sprintf("mpi: BroadcastBytes from root %d in a job of %d", root, c.size))
	}
	return chunked(c, "MPI_Bcast", buf, func(p unsafe.Pointer, n C.int) C.int {
		return C.mpiBcastBytes(p, n, C.int(root))
	})
}

// Barrier returns once every rank has called it.
func (c *Comm) Barrier() error {
	mu.Lock()
	defer mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	if rc := C.mpiBarrier(); rc != C.MPI_SUCCESS {
		return mpiError("MPI_Barrier", rc)
	}
	return nil
}

// Abort terminates every process of the job with exit status code, for a
// rank that cannot go on with the collectives (a failed test, say): the
// other ranks would otherwise wait for it forever. It returns only on
// failure.
func (c *Comm) Abort(code int) error {
	mu.Lock()
	defer mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	return mpiError("MPI_Abort", C.mpiAbort(C.int(code)))
}

// chunked calls f on successive chunks of at most maxCount elements of buf,
// under mu, for c. A zero-length buf makes no MPI call: every rank has the
// same length, so all of them skip it.
func chunked[T float64 | byte](c *Comm, name string, buf []T, f func(unsafe.Pointer, C.int) C.int) error {
	mu.Lock()
	defer mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	for len(buf) > 0 {
		n := min(len(buf), maxCount)
		// buf holds no Go pointers: cgo lets C read and write it for the
		// duration of the call, which is all MPI's blocking calls need.
		if rc := f(unsafe.Pointer(&buf[0]), C.int(n)); rc != C.MPI_SUCCESS {
			return mpiError(name, rc)
		}
		buf = buf[n:]
	}
	return nil
}

// check returns an error if c is no longer the world Comm (after
// Finalize). It is called under mu.
func (c *Comm) check() error {
	if world == nil || c != world {
		return errors.New("mpi: Comm used after Finalize")
	}
	return nil
}

// mpiError returns the error of an MPI call that returned rc, with the text
// of MPI_Error_string.
func mpiError(name string, rc C.int) error {
	s := (*C.char)(C.malloc(C.MPI_MAX_ERROR_STRING + 1))
	defer C.free(unsafe.Pointer(s))
	C.mpiErrorString(rc, s)
	msg := C.GoString(s)
	if msg == "" {
		msg = fmt.Sprintf("error code %d", int(rc))
	}
	return fmt.Errorf("mpi: %s: %s", name, msg)
}

// threadLevel returns the name of an MPI thread level.
func threadLevel(l C.int) string {
	switch l {
	case C.MPI_THREAD_SINGLE:
		return "MPI_THREAD_SINGLE"
	case C.MPI_THREAD_FUNNELED:
		return "MPI_THREAD_FUNNELED"
	case C.MPI_THREAD_SERIALIZED:
		return "MPI_THREAD_SERIALIZED"
	case C.MPI_THREAD_MULTIPLE:
		return "MPI_THREAD_MULTIPLE"
	}
	return fmt.Sprintf("thread level %d", int(l))
}
