package network

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
)

// TestSuite7_MonteCarloFisherConverges proves that the Monte-Carlo Fisher
// (fisher_gradients: gradients at targets drawn from the model, Martens &
// Grosse 2015) converges to the true Fisher (fisher_exact) at the rate of
// an unbiased estimator. With S samples per example, the estimate of the
// blocks is B̂ = (1/(nS)) Σ_i Σ_s z_is z_isᵀ, z = h̃_i ⊗ g, and its expected
// squared Frobenius error is
//
//	E‖B̂ − B‖² = (1/(n² S)) Σ_layers Σ_i ‖h̃_i‖⁴ (E‖g‖⁴ − ‖G_i‖²),
//
// G_i = E[g gᵀ] the exact output-side matrix of example i (from
// fisher_exact's Back) and E‖g‖⁴ estimated from the S = 4000 samples. The
// test asserts, for S = 40, 400, 4000, that the relative error
// ‖B̂ − B‖/‖B‖ over all layers lies within [1/5, 3] times its expected
// value √(E‖B̂ − B‖²)/‖B‖ ∝ 1/√S, and that the error at S = 4000 is less
// than a third of that at S = 40 (1/√S predicts a tenth).
func TestSuite7_MonteCarloFisherConverges(t *testing.T) {
	samples := []int{40, 400, 4000}
	for ci, c := range cases {
		net, X, Y := setup(c, 4, uint64(140+ci))
		n, _ := X.Dims()
		exact := Backprop{Estimator: FisherExact}
		exact.Fill(net, c.loss, X, Y)
		recs := net.Records()
		L := len(recs)
		blocks := make([]*mat.SymDense, L)
		g2 := make([][]float64, L) // ‖G_i‖²_F per layer and example
		h4 := make([]float64, 0)   // ‖h̃_i‖⁴ per layer and example, flattened
		norm2 := 0.0
		for l, rec := range recs {
			blocks[l] = &mat.SymDense{}
			curvature.DenseBlock(blocks[l], rec)
			norm2 += math.Pow(mat.Norm(blocks[l], 2), 2)
			_, out := rec.Back.Dims()
			g2[l] = make([]float64, n)
			for i := 0; i < n; i++ {
				gi := mat.NewSymDense(out, nil)
				m, _ := rec.Back.Dims()
				for r := 0; r < m; r++ {
					if rec.BackExample(r) == i {
						gi.SymRankOne(gi, 1, mat.NewVecDense(out, rec.Back.RawRowView(r)))
					}
				}
				g2[l][i] = math.Pow(mat.Norm(gi, 2), 2)
				ht := testutil.Augmented(rec.Input.RawRowView(i))
				h4 = append(h4, math.Pow(floats.Dot(ht, ht), 2))
			}
		}
		errs := make([]float64, len(samples))
		var varTerm float64 // Σ_l Σ_i ‖h̃‖⁴ (E‖g‖⁴ − ‖G_i‖²), from the largest S
		for si, s := range samples {
			bp := Backprop{Estimator: FisherGradients, Samples: s, Rand: newRand(uint64(150 + 10*ci + si))}
			bp.Fill(net, c.loss, X, Y)
			e2 := 0.0
			varTerm = 0
			for l, rec := range net.Records() {
				var b mat.SymDense
				curvature.DenseBlock(&b, rec)
				var d mat.Dense
				d.Sub(&b, blocks[l])
				e2 += math.Pow(mat.Norm(&d, 2), 2)
				m4 := make([]float64, n)
				cnt := make([]float64, n)
				m, _ := rec.Back.Dims()
				for r := 0; r < m; r++ {
					e := rec.BackExample(r)
					g := rec.Back.RawRowView(r)
					m4[e] += math.Pow(floats.Dot(g, g), 2)
					cnt[e]++
				}
				for i := 0; i < n; i++ {
					varTerm += h4[l*n+i] * (m4[i]/cnt[i] - g2[l][i])
				}
			}
			errs[si] = math.Sqrt(e2 / norm2)
		}
		for si, s := range samples {
			expected := math.Sqrt(varTerm / (float64(n*n) * float64(s)) / norm2)
			t.Logf("%s: S=%d relative error %.4f, expected %.4f", c.name, s, errs[si], expected)
			if errs[si] > 3*expected || errs[si] < expected/5 {
				t.Errorf("%s: S=%d relative error %.4g outside [1/5, 3]× expected %.4g", c.name, s, errs[si], expected)
			}
		}
		if last := errs[len(errs)-1]; last > errs[0]/3 {
			t.Errorf("%s: error %.4g at S=%d is not below a third of %.4g at S=%d", c.name, last, samples[len(samples)-1], errs[0], samples[0])
		}
	}
}
