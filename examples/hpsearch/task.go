package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// task is the experiment that every point of every search runs: train a
// small autoencoder with plain SGD for a fixed number of updates from a
// Glorot initialisation of variance scale α, and measure its reconstruction
// error on a fixed evaluation set.
type task struct {
	sizes   []int
	updates int
	batch   int
	train   *mat.Dense // training images, one per row
	eval    *mat.Dense // evaluation images (the first rows of train)
}

// pool downsamples square images (one per row, side×side pixels in
// row-major order) by averaging non-overlapping k×k blocks; side must be a
// multiple of k. It returns a new matrix of side²/k² columns.
func pool(x mat.Matrix, side, k int) *mat.Dense {
	n, d := x.Dims()
	if d != side*side || side%k != 0 || k < 1 {
		panic(fmt.Sprintf("pool: %d columns are not %d×%d images poolable by %d", d, side, side, k))
	}
	s := side / k
	out := mat.NewDense(n, s*s, nil)
	inv := 1 / float64(k*k)
	for i := range n {
		for r := range s {
			for c := range s {
				var sum float64
				for dr := range k {
					for dc := range k {
						sum += x.At(i, (r*k+dr)*side+c*k+dc)
					}
				}
				out.Set(i, r*s+c, sum*inv)
			}
		}
	}
	return out
}

// newTask builds the task from the first nTrain MNIST training images,
// pooled by k×k blocks, evaluating on the first nEval of them. sizes are the
// hidden layer sizes between the input and output layers.
func newTask(images *mat.Dense, k, nTrain, nEval int, hidden []int, updates, batch int) (*task, error) {
	n, _ := images.Dims()
	switch {
	case nTrain < 1 || nTrain > n:
		return nil, fmt.Errorf("-train %d must be in [1, %d]", nTrain, n)
	case nEval < 1 || nEval > nTrain:
		return nil, fmt.Errorf("-eval %d must be in [1, -train %d]", nEval, nTrain)
	case batch < 1 || batch > nTrain:
		return nil, fmt.Errorf("-batch %d must be in [1, -train %d]", batch, nTrain)
	case updates < 1:
		return nil, fmt.Errorf("-updates must be positive, got %d", updates)
	case k < 1 || datasets.MNISTRows%k != 0:
		return nil, fmt.Errorf("-pool %d must divide %d", k, datasets.MNISTRows)
	}
	train := pool(images.Slice(0, nTrain, 0, datasets.MNISTPixels), datasets.MNISTRows, k)
	_, d := train.Dims()
	sizes := append(append([]int{d}, hidden...), d)
	return &task{
		sizes:   sizes,
		updates: updates,
		batch:   batch,
		train:   train,
		eval:    train.Slice(0, nEval, 0, d).(*mat.Dense),
	}, nil
}

// numParams returns the number of weights and biases of a network with
// the given layer sizes.
func numParams(sizes []int) int {
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		n += sizes[l]*sizes[l+1] + sizes[l+1]
	}
	return n
}

// trainer runs experiments of a task on one goroutine, reusing its network
// and buffers from one experiment to the next.
type trainer struct {
	t   *task
	net *nn.Network
	xb  *mat.Dense
}

func newTrainer(t *task) *trainer {
	return &trainer{t: t, net: nn.NewAutoencoder(t.sizes)}
}

// experimentRand returns the random source of experiment index of search s:
// it draws the initial weights and the order of the minibatches. It does not
// depend on the search method: experiment (s, index) of grid, random and
// biased search starts from the same weights, up to their scale α, and sees
// the same minibatches.
func experimentRand(seed uint64, s, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(s)<<32|uint64(index)))
}

// run trains a freshly initialised network with SGD at learning rate lr from
// Glorot weights of variance α/(n_in+n_out), drawing from rng, and returns
// the quadratic reconstruction error ‖f(x) − x‖² (summed over pixels,
// averaged over images) on the evaluation set. A diverged run returns a
// non-finite value, which hpsearch records as a failed experiment.
func (tr *trainer) run(ctx context.Context, lr, alpha float64, rng *rand.Rand) (float64, error) {
	t := tr.t
	tr.net.Init(nn.Glorot{Alpha: alpha}, rng)
	opt := &optim.SGD{Rate: lr}
	n, _ := t.train.Dims()
	batches := datasets.NewBatches(n, rng, datasets.BatchConfig{Size: t.batch})
	loss := nn.Quadratic{}
	for u := range t.updates {
		if u%20 == 0 {
			if err := ctx.Err(); err != nil {
				return math.NaN(), err
			}
		}
		batches.Next()
		tr.xb = batches.Rows(tr.xb, t.train)
		tr.net.Forward(tr.xb)
		tr.net.Backward(loss, tr.xb)
		if err := opt.Step(tr.net.Records()); err != nil {
			return math.NaN(), err
		}
	}
	tr.net.Forward(t.eval)
	return loss.Value(tr.net.Output(), t.eval), nil
}
