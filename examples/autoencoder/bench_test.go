package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkSGDStep times one SGD step (forward, backward, update) of the
// benchmark autoencoder at batch 100 and 1000 and reports GFLOP/s counting
// 6 × parameters × batch floating-point operations per step (2 for the
// forward gemms, 4 for the two backward gemms). Run it in each backend:
//
//	SECONDORDER_BLAS=gonum go test -run '^$' -bench SGDStep ./examples/autoencoder
//	go test -run '^$' -bench SGDStep ./examples/autoencoder  # OpenBLAS at run time
//	go test -tags openblas -run '^$' -bench SGDStep ./examples/autoencoder
func BenchmarkSGDStep(b *testing.B) {
	sizes := []int{784, 1000, 500, 250, 30, 250, 500, 1000, 784}
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			net := nn.NewAutoencoder(sizes)
			net.Init(nn.Sparse{}, rng)
			x := mat.NewDense(batch, sizes[0], nil)
			x.Apply(func(_, _ int, _ float64) float64 { return rng.Float64() }, x)
			opt := &optim.SGD{Rate: 0.001, Momentum: 0.9}
			loss := nn.Quadratic{}
			step := func() {
				net.Forward(x)
				net.Backward(loss, x)
				if err := opt.Step(net.Records()); err != nil {
					b.Fatal(err)
				}
			}
			step()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			flops := 6 * float64(numParams(sizes)) * float64(batch)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkMethodStep times one update of every method of the table with
// its benchmark defaults (the passes its constructor runs and the Step) on
// the benchmark autoencoder at batch 100, on random images; newton runs on
// 784-2-784, the largest benchmark-like net its blocks allow. The first
// update, which factorizes every curvature block, is not timed; the
// amortized refreshes of acp, kfac and nnn are.
//
//	go test -run '^$' -bench MethodStep ./examples/autoencoder
func BenchmarkMethodStep(b *testing.B) {
	for _, m := range methods {
		b.Run(m.name, func(b *testing.B) {
			sizes := []int{784, 1000, 500, 250, 30, 250, 500, 1000, 784}
			args := []string{"-opt", m.name}
			if m.name == "newton" {
				sizes = []int{784, 2, 784}
				args = append(args, "-arch", "784-2-784")
			}
			c, err := parseFlags(args, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			tr, err := newTrainer(c, rng)
			if err != nil {
				b.Fatal(err)
			}
			net := tr.network(sizes)
			net.Init(nn.Sparse{}, rng)
			loss := nn.Quadratic{}
			x := mat.NewDense(100, sizes[0], nil)
			x.Apply(func(_, _ int, _ float64) float64 { return rng.Float64() }, x)
			if tr.start != nil {
				if err := tr.start(net, x, rng); err != nil {
					b.Fatal(err)
				}
			}
			update := 1
			step := func() {
				if err := tr.step(net, loss, x, update); err != nil {
					b.Fatal(err)
				}
				update++
			}
			step()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
		})
	}
}
