package secondorder_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// BenchmarkDgemm measures the matrix product that dominates training, in
// whichever backend the build selects, as a reference for the step
// benchmarks of examples/autoencoder:
//
//	SECONDORDER_BLAS=gonum go test -run '^$' -bench Dgemm .
//	go test -run '^$' -bench Dgemm .                # OpenBLAS at run time
//	go test -tags openblas -run '^$' -bench Dgemm .  # OpenBLAS through cgo
func BenchmarkDgemm(b *testing.B) {
	for _, n := range []int{250, 1000} {
		b.Run(fmt.Sprintf("n=%d/%s", n, backendLabel()), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			d := make([]float64, n*n)
			for i := range d {
				d[i] = rng.NormFloat64()
			}
			x := mat.NewDense(n, n, d)
			var c mat.Dense
			c.Mul(x, x)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Mul(x, x)
			}
			b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// backendLabel names the backend in a benchmark name (no spaces, no
// slashes).
func backendLabel() string {
	switch b := secondorder.Backend(); {
	case strings.HasPrefix(b, "openblas (run time"):
		return "openblas-runtime"
	case strings.HasPrefix(b, "openblas"):
		return "openblas-cgo"
	}
	return "gonum"
}

// BenchmarkEigenSym and BenchmarkCholesky time the factorizations of the
// curvature factors of the benchmark's widest layers (1000 × 1000), in
// whichever backend the build selects.
func BenchmarkEigenSym(b *testing.B) {
	a := benchSPD(1000)
	var e mat.EigenSym
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !e.Factorize(a, true) {
			b.Fatal("failed")
		}
	}
}

func BenchmarkCholesky(b *testing.B) {
	a := benchSPD(1000)
	var c mat.Cholesky
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !c.Factorize(a) {
			b.Fatal("failed")
		}
	}
}

func benchSPD(n int) *mat.SymDense {
	rng := rand.New(rand.NewPCG(2, 2))
	x := mat.NewDense(n, n, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	s := mat.NewSymDense(n, nil)
	s.SymOuterK(1, x)
	return s
}
