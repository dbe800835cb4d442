package main

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkSGDStep times one SGD step (forward, backward, update) of the
// benchmark autoencoder at batch 100 and 1000 and reports GFLOP/s counting
// 6 × parameters × batch floating-point operations per step (2 for the
// forward gemms, 4 for the two backward gemms). Run it in both backends:
//
//	go test -run '^$' -bench SGDStep ./examples/autoencoder
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
