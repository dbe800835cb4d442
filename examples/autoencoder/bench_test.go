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
// the benchmark autoencoder at batch 100 and 1000, on random images; newton
// runs on 784-2-784, the largest benchmark-like net its blocks allow, at
// batch 100 only; hf, whose update costs as many Gauss–Newton products as
// its CG iterations, is left out (the race reports its updates per
// second). The first warmUpdates updates (K-FAC's warm-up, which
// refactorizes at every update, and the first refreshes) are not timed; the
// refreshes of acp, kfac and nnn that follow are, so that with a -benchtime
// of a multiple of their period (20) the time is the amortized cost of an
// update; kfac-quarter-stats is K-FAC with its statistics on a quarter of
// the batch (-stats-batch). Each method's time is also reported as a multiple of sgd's at
// the same batch size (the "×sgd" column), measured in the same run:
//
//	go test -run '^$' -bench MethodStep -benchtime 40x ./examples/autoencoder
func BenchmarkMethodStep(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		var sgd float64 // seconds per sgd update at this batch size
		runs := []struct{ name, opt string }{}
		for _, m := range methods {
			if m.name == "hf" {
				continue // its cost is that of its CG iterations, which vary: see the race
			}
			if m.name != "newton" || batch == 100 {
				runs = append(runs, struct{ name, opt string }{m.name, m.name})
			}
		}
		// K-FAC with its statistics on a quarter of the batch (-stats-batch).
		runs = append(runs, struct{ name, opt string }{"kfac-quarter-stats", "kfac"})
		for _, r := range runs {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, r.name), func(b *testing.B) {
				var extra []string
				if r.name == "kfac-quarter-stats" {
					extra = []string{"-stats-batch", fmt.Sprint(batch / 4)}
				}
				sec := benchmarkMethod(b, r.opt, batch, extra...)
				switch {
				case r.name == "sgd":
					sgd = sec
				case sgd > 0 && r.name != "newton":
					b.ReportMetric(sec/sgd, "×sgd")
				}
			})
		}
	}
}

// warmUpdates is the number of untimed updates of BenchmarkMethodStep:
// K-FAC's warm-up of one inverse period and one update more.
const warmUpdates = 21

// benchmarkMethod times b.N updates of the named method at the batch size
// (with the extra flags) after warmUpdates untimed ones, and returns the
// seconds per update.
func benchmarkMethod(b *testing.B, name string, batch int, extra ...string) float64 {
	sizes := []int{784, 1000, 500, 250, 30, 250, 500, 1000, 784}
	args := append([]string{"-opt", name}, extra...)
	if name == "newton" {
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
	x := mat.NewDense(batch, sizes[0], nil)
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
	for range warmUpdates {
		step()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	return b.Elapsed().Seconds() / float64(b.N)
}
