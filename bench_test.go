package secondorder_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// BenchmarkDgemm measures the matrix product that dominates training, in
// whichever backend the build selects, as a reference for the step
// benchmarks of examples/autoencoder:
//
//	go test -run '^$' -bench Dgemm .
//	go test -tags openblas -run '^$' -bench Dgemm .
func BenchmarkDgemm(b *testing.B) {
	for _, n := range []int{250, 1000} {
		b.Run(fmt.Sprintf("n=%d/%s", n, secondorder.Backend()), func(b *testing.B) {
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
