package dist_test

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// Two workers, goroutines of one process, train one network with K-FAC,
// each on its half of every minibatch: the optimizer averages the factor
// statistics and the preconditioned gradients over the workers and splits
// the refreshes of the factors between them, so both hold the parameters
// one process would after training on the whole minibatches.
func Example() {
	const workers, batch = 2, 64
	rng := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(batch, 8, nil)
	y := mat.NewDense(batch, 2, nil)
	for i := range batch {
		for j := range 8 {
			x.Set(i, j, rng.NormFloat64())
		}
		y.Set(i, 0, x.At(i, 0)*x.At(i, 1))
		y.Set(i, 1, x.At(i, 2)-x.At(i, 3))
	}
	train := func(c dist.Comm, rows [2]int) []float64 {
		net := nn.New([]int{8, 16, 2}, []nn.Activation{nn.Tanh{}, nn.Identity{}})
		net.Init(nn.Glorot{}, rand.New(rand.NewPCG(3, 4))) // the same on every worker
		opt := &optim.KFAC{Rules: optim.Rules{Comm: c}}
		xs, ys := x.Slice(rows[0], rows[1], 0, 8), y.Slice(rows[0], rows[1], 0, 2)
		var exact network.Backprop // exact Gauss–Newton vectors into Back
		for range 20 {
			exact.Fill(net, nn.Quadratic{}, xs, ys)
			if err := opt.Step(net.Records()); err != nil {
				panic(err)
			}
		}
		return net.Params(nil)
	}

	theta := make([][]float64, workers)
	var wg sync.WaitGroup
	for r, c := range dist.NewGroup(workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			theta[r] = train(c, [2]int{r * batch / workers, (r + 1) * batch / workers})
		}()
	}
	wg.Wait()
	alone := train(nil, [2]int{0, batch})

	same, diff := true, 0.0
	for i, v := range alone {
		same = same && theta[0][i] == theta[1][i]
		diff = max(diff, abs(theta[0][i]-v))
	}
	fmt.Println("workers identical:", same)
	fmt.Println("one process within 1e-12:", diff < 1e-12)
	// Output:
	// workers identical: true
	// one process within 1e-12: true
}

func abs(v float64) float64 { return max(v, -v) }
