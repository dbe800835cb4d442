package network

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite9_DiagonalGGN proves the diagonal curvature of
// curvature.DiagonalBlock, computed from the records alone (BackPACK's
// DiagGGN and DiagGGN-MC): with the exact estimators (ggn_exact, both
// splits; fisher_exact) it equals the diagonal of the full Gauss–Newton or
// Fisher matrix from explicit jacobians, every layer and loss (tolerance
// 1e-12·max + 1e-15); with the Monte-Carlo Fisher (fisher_gradients, S
// targets per example) it is not exact, and its error converges at the
// rate of an unbiased estimator: per entry (c, o) of example i the samples
// z = h̃_c g_o have E z² = h̃_c² G_i[o,o], so
//
//	E‖d̂ − d‖² = (1/(n² S)) Σ_i Σ_(c,o) h̃_ic⁴ (E g_o⁴ − G_i[o,o]²),
//
// with E g_o⁴ estimated from the S = 4000 samples. The relative error for
// S = 40, 400, 4000 lies within [1/5, 3] times its expected value.
func TestSuite9_DiagonalGGN(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(300+ci))
		off := secondorder.NewLayout(net.Records()).Offsets
		for _, v := range []struct {
			bp   Backprop
			full func(dst *mat.SymDense)
		}{
			{Backprop{Estimator: GGNExact, Split: nn.SplitLogits}, func(dst *mat.SymDense) {
				GaussNewtonMatrix(dst, net, c.loss, X, Y, nn.GaussNewton, nn.SplitLogits)
			}},
			{Backprop{Estimator: GGNExact, Split: nn.SplitOutputs}, func(dst *mat.SymDense) {
				GaussNewtonMatrix(dst, net, c.loss, X, Y, nn.GaussNewton, nn.SplitOutputs)
			}},
			{Backprop{Estimator: FisherExact}, func(dst *mat.SymDense) { FisherMatrix(dst, net, c.loss, X) }},
		} {
			name := fmt.Sprintf("%s/%v/%v", c.name, v.bp.Estimator, v.bp.Split)
			var full mat.SymDense
			v.full(&full)
			v.bp.Fill(net, c.loss, X, Y)
			for l, rec := range net.Records() {
				var b curvature.DiagonalBlock
				b.Update(rec)
				var got mat.VecDense
				b.Diagonal(&got)
				p := off[l+1] - off[l]
				big := 0.0
				for i := 0; i < p; i++ {
					big = math.Max(big, math.Abs(full.At(off[l]+i, off[l]+i)))
				}
				for i := 0; i < p; i++ {
					want := full.At(off[l]+i, off[l]+i)
					if d := math.Abs(got.AtVec(i) - want); d > 1e-12*big+1e-15 {
						t.Errorf("%s/layer %d: diagonal entry %d = %.15g, full matrix %.15g", name, l, i, got.AtVec(i), want)
					}
				}
			}
		}

		// The Monte-Carlo diagonal against the true Fisher's.
		n, _ := X.Dims()
		exact := Backprop{Estimator: FisherExact}
		exact.Fill(net, c.loss, X, Y)
		var want []float64
		var gii [][][]float64 // per layer, example: G_i[o,o]
		var hin []*mat.Dense  // per layer: inputs
		for _, rec := range net.Records() {
			var b curvature.DiagonalBlock
			b.Update(rec)
			var d mat.VecDense
			b.Diagonal(&d)
			want = append(want, d.RawVector().Data...)
			_, out := rec.Back.Dims()
			g := make([][]float64, n)
			for i := range g {
				g[i] = make([]float64, out)
			}
			m, _ := rec.Back.Dims()
			for r := 0; r < m; r++ {
				for o, x := range rec.Back.RawRowView(r) {
					g[rec.BackExample(r)][o] += x * x
				}
			}
			gii = append(gii, g)
			hin = append(hin, mat.DenseCopyOf(rec.Input))
		}
		norm := 0.0
		for _, x := range want {
			norm += x * x
		}
		norm = math.Sqrt(norm)
		samples := []int{40, 400, 4000}
		errs := make([]float64, len(samples))
		var varTerm float64
		for si, s := range samples {
			bp := Backprop{Estimator: FisherGradients, Samples: s, Rand: newRand(uint64(320 + 10*ci + si))}
			bp.Fill(net, c.loss, X, Y)
			e2 := 0.0
			k := 0
			varTerm = 0
			for l, rec := range net.Records() {
				var b curvature.DiagonalBlock
				b.Update(rec)
				var d mat.VecDense
				b.Diagonal(&d)
				for _, x := range d.RawVector().Data {
					e2 += (x - want[k]) * (x - want[k])
					k++
				}
				_, out := rec.Back.Dims()
				_, in := rec.Input.Dims()
				g4 := make([][]float64, n)
				cnt := make([]float64, n)
				for i := range g4 {
					g4[i] = make([]float64, out)
				}
				m, _ := rec.Back.Dims()
				for r := 0; r < m; r++ {
					e := rec.BackExample(r)
					cnt[e]++
					for o, x := range rec.Back.RawRowView(r) {
						g4[e][o] += x * x * x * x
					}
				}
				for i := 0; i < n; i++ {
					for ch := 0; ch <= in; ch++ {
						h := 1.0
						if ch < in {
							h = hin[l].At(i, ch)
						}
						for o := 0; o < out; o++ {
							varTerm += math.Pow(h, 4) * (g4[i][o]/cnt[i] - gii[l][i][o]*gii[l][i][o])
						}
					}
				}
			}
			errs[si] = math.Sqrt(e2) / norm
		}
		for si, s := range samples {
			expected := math.Sqrt(varTerm/(float64(n*n)*float64(s))) / norm
			t.Logf("%s: S=%d relative error %.4f, expected %.4f", c.name, s, errs[si], expected)
			if errs[si] > 3*expected || errs[si] < expected/5 {
				t.Errorf("%s: Monte-Carlo diagonal, S=%d: relative error %.4g outside [1/5, 3]× expected %.4g", c.name, s, errs[si], expected)
			}
		}
	}
}

// TestSuite10_SpectralEstimators proves the matrix-free estimators of
// package curvature on network operators against dense matrices of the
// same networks: Lanczos with k = P steps on the Gauss–Newton, Fisher and
// (indefinite) Hessian operators gives the eigenvalues of
// GaussNewtonMatrix, FisherMatrix and GaussNewtonMatrix + ResidualMatrix
// (gonum's EigenSym; tolerance 1e-8·max|λ|); with 6 steps every Ritz value
// lies in the spectrum's range and within its residual bound of an
// eigenvalue, but some Ritz value is not an eigenvalue. Hutchinson's trace and diagonal of the
// Hessian operator with S = 2000 probes are within 4.5 of their reported
// standard errors of the dense trace and diagonal (all entries pooled:
// RMS z-score below 1.5), and SLQ's trace is Hutchinson's with the same
// probes.
func TestSuite10_SpectralEstimators(t *testing.T) {
	for ci, c := range []netCase{cases[1], cases[4], reluCase} {
		net, X, Y := setup(c, 5, uint64(400+ci))
		var gn, fisher, res mat.SymDense
		GaussNewtonMatrix(&gn, net, c.loss, X, Y, nn.GaussNewton, nn.SplitLogits)
		FisherMatrix(&fisher, net, c.loss, X)
		ResidualMatrix(&res, net, c.loss, X, Y, nn.SplitLogits)
		hess := mat.NewSymDense(gn.SymmetricDim(), nil)
		hess.AddSym(&gn, &res)
		for _, m := range []struct {
			name  string
			op    *Operator
			dense *mat.SymDense
		}{
			{"GN", NewGaussNewtonOperator(net, c.loss, X, Y, nn.GaussNewton, nn.SplitLogits), &gn},
			{"Fisher", NewFisherOperator(net, c.loss, X), &fisher},
			{"Hessian", NewHessianOperator(net, c.loss, X, Y), hess},
		} {
			name := c.name + "/" + m.name
			var es mat.EigenSym
			if !es.Factorize(m.dense, false) {
				t.Fatal("EigenSym failed")
			}
			eig := es.Values(nil)
			p := len(eig)
			scale := math.Max(math.Abs(eig[0]), math.Abs(eig[p-1]))
			r, err := curvature.Lanczos{Steps: p, Rand: newRand(uint64(410 + ci))}.Run(m.op)
			if err != nil {
				t.Fatal(err)
			}
			// A rank-deficient GN has a repeated zero eigenvalue: the
			// Krylov space is invariant early, and each distinct
			// eigenvalue appears once among the Ritz values.
			for j, v := range r.Values {
				if d := nearest(eig, v); d > 1e-8*scale {
					t.Errorf("%s: Ritz value %d (%g) is %g from every eigenvalue", name, j, v, d)
				}
			}
			if top := r.Values[r.Steps()-1]; math.Abs(top-eig[p-1]) > 1e-8*scale {
				t.Errorf("%s: largest Ritz value %.12g, largest eigenvalue %.12g", name, top, eig[p-1])
			}
			if m.name == "Hessian" && !(r.Values[0] < 0) {
				t.Errorf("%s: smallest Ritz value %g; the Hessian of this case is indefinite (%g)", name, r.Values[0], eig[0])
			}
			short, err := curvature.Lanczos{Steps: 6, Rand: newRand(uint64(420 + ci))}.Run(m.op)
			if err != nil {
				t.Fatal(err)
			}
			far := 0.0
			for j, v := range short.Values {
				d := nearest(eig, v)
				if d > short.Residual(j)+1e-10*scale {
					t.Errorf("%s: 6-step Ritz value %g is %g from every eigenvalue, beyond its bound %g", name, v, d, short.Residual(j))
				}
				if v < eig[0]-1e-10*scale || v > eig[p-1]+1e-10*scale {
					t.Errorf("%s: 6-step Ritz value %g outside the spectrum [%g, %g]", name, v, eig[0], eig[p-1])
				}
				far = math.Max(far, d)
			}
			if far < 1e-6*scale {
				t.Errorf("%s: every 6-step Ritz value is an eigenvalue; the test cannot fail", name)
			}
		}

		hop := NewHessianOperator(net, c.loss, X, Y)
		h := curvature.Hutchinson{Samples: 2000, Rand: newRand(uint64(430 + ci))}
		tr, err := h.Trace(hop)
		if err != nil {
			t.Fatal(err)
		}
		if z := math.Abs(tr.Value-mat.Trace(hess)) / tr.StdErr; z > 4.5 {
			t.Errorf("%s: Hutchinson trace %g ± %g, dense %g (z = %.2f)", c.name, tr.Value, tr.StdErr, mat.Trace(hess), z)
		}
		var d, se mat.VecDense
		if err := h.Diagonal(&d, &se, hop); err != nil {
			t.Fatal(err)
		}
		z2, cnt := 0.0, 0
		for i := 0; i < d.Len(); i++ {
			e := d.AtVec(i) - hess.At(i, i)
			if se.AtVec(i) == 0 {
				if math.Abs(e) > 1e-12 {
					t.Errorf("%s: diagonal %d: zero standard error but error %g", c.name, i, e)
				}
				continue
			}
			z := e / se.AtVec(i)
			if math.Abs(z) > 4.5 {
				t.Errorf("%s: diagonal %d: %g ± %g, dense %g", c.name, i, d.AtVec(i), se.AtVec(i), hess.At(i, i))
			}
			z2 += z * z
			cnt++
		}
		if rms := math.Sqrt(z2 / float64(cnt)); rms > 1.5 {
			t.Errorf("%s: RMS z-score of the Hutchinson diagonal %.3f", c.name, rms)
		}
		q, err := curvature.SLQ{Probes: 20, Rand: newRand(uint64(440 + ci))}.Run(hop)
		if err != nil {
			t.Fatal(err)
		}
		ht, _ := curvature.Hutchinson{Samples: 20, Rand: newRand(uint64(440 + ci))}.Trace(hop)
		if st := q.Trace(func(x float64) float64 { return x }); math.Abs(st.Value-ht.Value) > 1e-9*math.Abs(ht.Value) {
			t.Errorf("%s: SLQ trace %g, Hutchinson with the same probes %g", c.name, st.Value, ht.Value)
		}
	}
}

// nearest returns the distance from v to the closest entry of sorted.
func nearest(sorted []float64, v float64) float64 {
	d := math.Inf(1)
	for _, x := range sorted {
		d = math.Min(d, math.Abs(x-v))
	}
	return d
}
