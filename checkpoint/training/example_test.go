package training_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/checkpoint/training"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// A training run checkpointed after 5 of its 10 updates and resumed in a
// fresh process (here: a fresh State, set up as for a new start) makes
// the same updates, minibatches and random draws as the run that was never
// interrupted: the parameters are equal bit for bit.
func Example() {
	dir, err := os.MkdirTemp("", "training-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	gen := rand.New(rand.NewPCG(7, 7))
	x, y := mat.NewDense(20, 4, nil), mat.NewDense(20, 2, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return gen.NormFloat64() }, x)
	y.Apply(func(_, _ int, _ float64) float64 { return gen.NormFloat64() }, y)

	// setup starts a run: every random draw comes from one source.
	setup := func() training.State {
		src := rand.NewPCG(1, 2)
		rng := rand.New(src)
		net := nn.New([]int{4, 3, 2}, []nn.Activation{nn.Tanh{}, nn.Identity{}})
		net.Init(nn.Glorot{}, rng)
		batches := datasets.NewBatches(20, rng, datasets.BatchConfig{Size: 5})
		return training.State{Net: net, Optimizer: &optim.Adam{}, Batches: batches, Source: src}
	}
	train := func(s training.State, updates int) {
		var xb, yb *mat.Dense
		for range updates {
			s.Batches.Next()
			xb, yb = s.Batches.Rows(xb, x), s.Batches.Rows(yb, y)
			s.Net.Forward(xb)
			s.Net.Backward(nn.Quadratic{}, yb)
			if err := s.Optimizer.(optim.Optimizer).Step(s.Net.Records()); err != nil {
				log.Fatal(err)
			}
		}
	}

	straight := setup()
	train(straight, 10)

	interrupted := setup()
	train(interrupted, 5)
	w := training.Writer{Dir: dir}
	if err := w.Save(interrupted, 5, time.Second); err != nil {
		log.Fatal(err)
	}

	ck, err := training.Read(dir, nil, "")
	if err != nil {
		log.Fatal(err)
	}
	resumed := setup()
	if err := resumed.Restore(dir, ck); err != nil {
		log.Fatal(err)
	}
	train(resumed, 10-ck.Updates)
	fmt.Println("resumed at update", ck.Updates)
	fmt.Println("same parameters as the uninterrupted run:", slices.Equal(straight.Net.Params(nil), resumed.Net.Params(nil)))
	// Output:
	// resumed at update 5
	// same parameters as the uninterrupted run: true
}
