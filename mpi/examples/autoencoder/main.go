// Command autoencoder trains the deep autoencoder benchmark of thesis §2.5
// (784-1000-500-250-30-250-500-1000-784, sigmoid units, a linear code
// layer, the quadratic loss, MNIST) data-parallel over MPI: the template for
// training with secondorder on several processes or machines.
//
// Every rank loads MNIST, builds the same network from the same seed and
// draws the same sequence of minibatches of -batch examples; each takes its
// contiguous shard of every minibatch (rank r of N: rows r·B/N to
// (r+1)·B/N), fills its records for it, and steps an optimizer whose Comm
// is the MPI communicator. The optimizer replaces the gradients and the
// curvature statistics by their means over all ranks' examples and splits
// the refreshes of K-FAC's factors between the ranks, so that every rank
// applies the update of one process on the whole minibatch and the ranks
// stay identical. Run it with
//
//	mpi/mpirun.sh 2 go run ./examples/autoencoder -opt kfac -updates 200
//
// from the mpi module (mpirun.sh shares the cores between the ranks; `go build`
// first to compile once rather than on every rank). Rank 0 prints, at the
// end,
//
//	final: ranks=N updates=U seconds=S ms_per_update=M comm_MB_per_update=C comm_ms_per_update=T train_err=X test_err=Y
//
// where the errors are the reconstruction errors (the quadratic loss,
// summed over pixels) on -eval images of the training and test sets,
// evaluated on shards by all ranks and all-reduced, and the comm figures
// are what the optimizer's collectives sent and how long they took, per
// update, on rank 0 (measured by wrapping the Comm: see meter).
//
// Started without mpirun it is one process, and trains as
// examples/autoencoder of the main module does.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/mpi"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

func main() {
	opt := flag.String("opt", "kfac", "optimizer: kfac, ekfac, shampoo, centered, adam or sgd")
	batch := flag.Int("batch", 1000, "global minibatch size B, split between the ranks")
	updates := flag.Int("updates", 100, "number of updates")
	budget := flag.Duration("time", 0, "stop after this much training time (0: none)")
	eval := flag.Int("eval", 10000, "images of the train and test sets for the final errors")
	seed := flag.Uint64("seed", 1, "seed of the initialization and of the minibatches")
	dir := flag.String("mnist", "", "directory of the MNIST files (default: found, see datasets.LoadMNIST)")
	flag.Parse()

	world, err := mpi.Init()
	if err != nil {
		log.Fatal(err)
	}
	comm := &meter{Comm: world}
	code := 0
	if err := run(comm, *opt, *batch, *updates, *budget, *eval, *seed, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", world.Rank(), err)
		code = 1
		if world.Size() > 1 {
			world.Abort(1) // the other ranks would wait for this one forever
		}
	}
	if err := mpi.Finalize(); err != nil {
		log.Fatal(err)
	}
	os.Exit(code)
}

func run(comm *meter, name string, batch, updates int, budget time.Duration, evalN int, seed uint64, dir string) error {
	rank, size := comm.Rank(), comm.Size()
	if batch < size {
		return fmt.Errorf("-batch %d is smaller than the %d ranks", batch, size)
	}
	data, err := datasets.LoadMNIST(dir)
	if err != nil {
		return err
	}
	net := nn.NewAutoencoder([]int{784, 1000, 500, 250, 30, 250, 500, 1000, 784})
	net.Init(nn.Sparse{}, rand.New(rand.NewPCG(seed, 1))) // the same on every rank
	loss := nn.Quadratic{}

	// The optimizer: the library's zero values (the benchmark's settings
	// for the first-order methods), with the communicator.
	var o optim.Optimizer
	var fill func(x *mat.Dense)
	plain := func(x *mat.Dense) {
		net.Forward(x)
		net.Backward(loss, x)
	}
	// Monte-Carlo Fisher vectors for K-FAC and EKFAC: each rank samples
	// its own targets, from its own stream.
	mc := network.Backprop{Estimator: network.FisherGradients, Rand: rand.New(rand.NewPCG(seed, 100+uint64(rank)))}
	fisher := func(x *mat.Dense) { mc.Fill(net, loss, x, x) }
	switch name {
	case "kfac":
		o, fill = &optim.KFAC{Rules: optim.Rules{Comm: comm}}, fisher
	case "ekfac":
		o, fill = &optim.EKFAC{Rules: optim.Rules{Comm: comm}}, fisher
	case "shampoo":
		o, fill = &optim.Shampoo{Rules: optim.Rules{Comm: comm}}, plain
	case "centered":
		o, fill = &optim.Centered{Rate: 0.1, Momentum: 0.9, Comm: comm}, plain
	case "adam":
		o, fill = &optim.Adam{Comm: comm}, plain
	case "sgd":
		o, fill = &optim.SGD{Rate: 0.01, Momentum: 0.9, Comm: comm}, plain
	default:
		return fmt.Errorf("unknown -opt %q", name)
	}

	// The same minibatches on every rank; this rank's shard of each.
	batches := datasets.NewBatches(60000, rand.New(rand.NewPCG(seed, 2)), datasets.BatchConfig{Size: batch})
	lo, hi := rank*batch/size, (rank+1)*batch/size
	x := mat.NewDense(hi-lo, 784, nil)
	var train time.Duration
	done := 0
	for done < updates && (budget == 0 || train < budget) && batches.Next() {
		idx := batches.Indices()[lo:hi]
		for i, j := range idx {
			x.SetRow(i, data.TrainImages.RawRowView(j))
		}
		start := time.Now()
		fill(x)
		if err := o.Step(net.Records()); err != nil {
			return fmt.Errorf("update %d: %w", done, err)
		}
		train += time.Since(start)
		done++
	}
	sent, spent := comm.bytes, comm.spent

	trainErr, err := shardedRisk(comm, net, loss, data.TrainImages, evalN)
	if err != nil {
		return err
	}
	testErr, err := shardedRisk(comm, net, loss, data.TestImages, evalN)
	if err != nil {
		return err
	}
	if rank == 0 {
		per := func(v float64) float64 { return v / float64(max(done, 1)) }
		fmt.Printf("final: ranks=%d opt=%s batch=%d updates=%d seconds=%.1f ms_per_update=%.1f comm_MB_per_update=%.2f comm_ms_per_update=%.1f train_err=%.4f test_err=%.4f\n",
			size, name, batch, done, train.Seconds(), per(1e3*train.Seconds()), per(float64(sent)/1e6), per(1e3*spent.Seconds()), trainErr, testErr)
	}
	return nil
}

// shardedRisk returns the mean loss over the first n rows of x, each rank
// evaluating its shard and the sums all-reduced.
func shardedRisk(c dist.Comm, net *nn.Network, loss nn.Loss, x *mat.Dense, n int) (float64, error) {
	n = min(n, x.RawMatrix().Rows)
	lo, hi := c.Rank()*n/c.Size(), (c.Rank()+1)*n/c.Size()
	sum := []float64{0, float64(hi - lo)}
	for s := lo; s < hi; s += 1000 {
		e := min(s+1000, hi)
		xs := x.Slice(s, e, 0, 784)
		sum[0] += float64(e-s) * net.Risk(loss, xs, xs)
	}
	if err := c.AllReduce(sum, dist.Sum); err != nil {
		return 0, err
	}
	return sum[0] / sum[1], nil
}

// meter is a dist.Comm that counts the bytes its collectives carry (the
// buffer of each call, as this rank sees it) and the time spent in them.
type meter struct {
	dist.Comm
	bytes int64
	spent time.Duration
}

func (m *meter) AllReduce(buf []float64, op dist.Op) error {
	defer m.count(time.Now(), 8*len(buf))
	return m.Comm.AllReduce(buf, op)
}

func (m *meter) Broadcast(buf []float64, root int) error {
	defer m.count(time.Now(), 8*len(buf))
	return m.Comm.Broadcast(buf, root)
}

func (m *meter) BroadcastBytes(buf []byte, root int) error {
	defer m.count(time.Now(), len(buf))
	return m.Comm.BroadcastBytes(buf, root)
}

func (m *meter) count(start time.Time, n int) {
	m.spent += time.Since(start)
	m.bytes += int64(n)
}
