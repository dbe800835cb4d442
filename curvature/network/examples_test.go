package network

import (
	"fmt"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// subBatchSizes are the values of Backprop.Examples tried on a batch of n
// examples: one example, a proper sub-batch, and the whole batch.
func subBatchSizes(n int) []int { return []int{1, 3, n} }

// headCopy returns a copy of the first m rows of x.
func headCopy(x *mat.Dense, m int) *mat.Dense {
	_, c := x.Dims()
	return mat.DenseCopyOf(x.Slice(0, m, 0, c))
}

// checkSubBatchLayout checks that every record of net holds rows rows of
// Back tied to the examples example(r) by BackExamples (set, since the
// rows cover a sub-batch), covering the first m examples
// (secondorder.Layer.BackCover), with BackScale scale, and that the records
// pass secondorder.Layer.Check.
func checkSubBatchLayout(t *testing.T, name string, net *nn.Network, m, rows int, example func(r int) int, scale float64) {
	t.Helper()
	for l, rec := range net.Records() {
		rec.Check()
		if r, _ := rec.Back.Dims(); r != rows {
			t.Fatalf("%s/layer %d: Back has %d rows, want %d", name, l, r, rows)
		}
		if n, _ := rec.Input.Dims(); m < n && len(rec.BackExamples) != rows {
			t.Fatalf("%s/layer %d: BackExamples has length %d, want %d", name, l, len(rec.BackExamples), rows)
		}
		for r := 0; r < rows; r++ {
			if got, want := rec.BackExample(r), example(r); got != want {
				t.Fatalf("%s/layer %d: row %d belongs to example %d, want %d", name, l, r, got, want)
			}
		}
		if got := rec.BackCover(); got != m {
			t.Errorf("%s/layer %d: BackCover = %d, want %d", name, l, got, m)
		}
		if rec.BackScale != scale {
			t.Errorf("%s/layer %d: BackScale = %g, want %g", name, l, rec.BackScale, scale)
		}
	}
}

// TestBackpropExamplesExact proves that Backprop.Examples = m gives the
// deterministic estimators' curvature of the sub-batch of the first m
// examples (Martens & Grosse's τ1): for every loss, m ∈ {1, 3, n} of n = 5,
// and ggn_exact (both splits), fisher_exact and fisher_empirical,
//
//   - the layout: k rows per example (one for fisher_empirical), BackExamples
//     r/k, BackCover m, BackScale 1/m, and Grad still that of the whole
//     batch (n rows, equal to a Fill without Examples);
//   - curvature.DenseBlock of every record equals the layer's diagonal block
//     of the full matrix (GaussNewtonMatrix, FisherMatrix,
//     EmpiricalFisherMatrix) on X[:m] alone;
//   - K-FAC's factors equal those of a network filled on X[:m] without
//     Examples: OutputFactor of the record, InputFactor of its first
//     BackCover rows of Input, and the factors of a curvature.KFACBlock
//     after one Update (which takes Ā on the BackCover rows itself).
//
// Tolerance: 1e-12·max|block| + 1e-15.
func TestBackpropExamplesExact(t *testing.T) {
	type variant struct {
		bp   Backprop
		per  bool // k rows per example
		full func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense)
	}
	variants := []variant{
		{Backprop{Estimator: GGNExact, Split: nn.SplitLogits}, true, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			GaussNewtonMatrix(dst, net, loss, X, Y, nn.GaussNewton, nn.SplitLogits)
		}},
		{Backprop{Estimator: GGNExact, Split: nn.SplitOutputs}, true, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			GaussNewtonMatrix(dst, net, loss, X, Y, nn.GaussNewton, nn.SplitOutputs)
		}},
		{Backprop{Estimator: FisherExact}, true, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			FisherMatrix(dst, net, loss, X)
		}},
		{Backprop{Estimator: FisherEmpirical}, false, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			EmpiricalFisherMatrix(dst, net, loss, X, Y)
		}},
	}
	const n = 5
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		seed := uint64(300 + ci)
		net, X, Y := setup(c, n, seed)
		ref, _, _ := setup(c, n, seed) // the same parameters, for the sub-batch
		k := c.sizes[len(c.sizes)-1]
		off := secondorder.NewLayout(net.Records()).Offsets
		for _, v := range variants {
			for _, m := range subBatchSizes(n) {
				name := fmt.Sprintf("%s/%v/%v/m=%d", c.name, v.bp.Estimator, v.bp.Split, m)
				Xm, Ym := headCopy(X, m), headCopy(Y, m)
				var full mat.SymDense
				v.full(&full, ref, c.loss, Xm, Ym)

				whole := v.bp
				whole.Fill(net, c.loss, X, Y)
				grads := make([]*mat.Dense, len(net.Records()))
				for l, rec := range net.Records() {
					grads[l] = mat.DenseCopyOf(rec.Grad)
				}

				bp := v.bp
				bp.Examples = m
				bp.Fill(net, c.loss, X, Y)
				refBP := v.bp
				refBP.Fill(ref, c.loss, Xm, Ym)

				per := 1
				if v.per {
					per = k
				}
				checkSubBatchLayout(t, name, net, m, m*per, func(r int) int { return r / per }, 1/float64(m))
				refRecs := ref.Records()
				for l, rec := range net.Records() {
					lname := fmt.Sprintf("%s/layer %d", name, l)
					if !mat.Equal(rec.Grad, grads[l]) {
						t.Errorf("%s: Grad differs from that of the whole batch", lname)
					}
					var got, want mat.SymDense
					curvature.DenseBlock(&got, rec)
					curvature.LayerBlock(&want, &full, off, l)
					testutil.EqualApprox(t, lname+"/DenseBlock", &got, &want, 1e-15, 1e-12)

					var g, gRef, a, aRef mat.SymDense
					curvature.OutputFactor(&g, rec)
					curvature.OutputFactor(&gRef, refRecs[l])
					testutil.EqualApprox(t, lname+"/OutputFactor", &g, &gRef, 1e-15, 1e-12)
					_, in := rec.Input.Dims()
					curvature.InputFactor(&a, rec.Input.Slice(0, rec.BackCover(), 0, in))
					curvature.InputFactor(&aRef, refRecs[l].Input)
					testutil.EqualApprox(t, lname+"/InputFactor", &a, &aRef, 1e-15, 1e-12)

					var blk curvature.KFACBlock
					blk.Update(rec)
					ba, bg := blk.Factors()
					testutil.EqualApprox(t, lname+"/KFACBlock Ā", ba, &aRef, 1e-15, 1e-12)
					testutil.EqualApprox(t, lname+"/KFACBlock G", bg, &gRef, 1e-15, 1e-12)
				}
			}
		}
	}
}

// cloneBack returns copies of every record's Back, BackScale and
// BackExamples.
type backCopy struct {
	back     *mat.Dense
	scale    float64
	examples []int
}

func cloneBack(net *nn.Network) []backCopy {
	recs := net.Records()
	out := make([]backCopy, len(recs))
	for l, rec := range recs {
		out[l] = backCopy{mat.DenseCopyOf(rec.Back), rec.BackScale, slices.Clone(rec.BackExamples)}
	}
	return out
}

// sameBack reports whether two copies are bit-identical, BackExamples
// included (nil and non-nil differ).
func sameBack(a, b []backCopy) bool {
	for l := range a {
		if !mat.Equal(a[l].back, b[l].back) || a[l].scale != b[l].scale ||
			(a[l].examples == nil) != (b[l].examples == nil) || !slices.Equal(a[l].examples, b[l].examples) {
			return false
		}
	}
	return true
}

// TestBackpropExamplesFisherGradients checks fisher_gradients with
// Examples = m ∈ {1, 3, n} of n = 5 and Samples ∈ {0, 1, 3}:
//
//   - the layout: m·s rows (s = max(Samples, 1)), row j·m+i sample j of
//     example i through BackExamples, BackCover m, BackScale 1/(m·s);
//   - with a fixed seed, the records are bit-identical to those built by
//     hand on the same network: s rounds of loss.Sample and loss.GradA on
//     the first m rows of the output (the whole output for m = n), stacked
//     and backpropagated by nn.Network.BackwardVectors, BackScale 1/(m·s) —
//     for m = n and s ≤ 1 by nn.Network.BackwardMC, the path of a Fill
//     without Examples, whose random stream must be unchanged.
func TestBackpropExamplesFisherGradients(t *testing.T) {
	const n = 5
	for ci, c := range cases {
		net, X, Y := setup(c, n, uint64(320+ci))
		k := c.sizes[len(c.sizes)-1]
		for _, s := range []int{0, 1, 3} {
			for mi, m := range subBatchSizes(n) {
				name := fmt.Sprintf("%s/Samples=%d/m=%d", c.name, s, m)
				seed := uint64(330 + 10*ci + mi)
				bp := Backprop{Estimator: FisherGradients, Samples: s, Examples: m, Rand: newRand(seed)}
				bp.Fill(net, c.loss, X, Y)
				ss := max(s, 1)
				checkSubBatchLayout(t, name, net, m, m*ss, func(r int) int { return r % m }, 1/float64(m*ss))
				got := cloneBack(net)

				rng := newRand(seed)
				if m == n && s <= 1 {
					net.BackwardMC(c.loss, rng)
				} else {
					o := net.Output()
					sub := nn.Output{Act: o.Act, A: headCopy(o.A, m), F: headCopy(o.F, m)}
					V := mat.NewDense(m*ss, k, nil)
					idx := make([]int, m*ss)
					ys, g := mat.NewDense(m, k, nil), mat.NewDense(m, k, nil)
					for j := 0; j < ss; j++ {
						c.loss.Sample(ys, sub, rng)
						c.loss.GradA(g, sub, ys)
						for i := 0; i < m; i++ {
							V.SetRow(j*m+i, g.RawRowView(i))
							idx[j*m+i] = i
						}
					}
					net.BackwardVectors(V, idx)
					for _, rec := range net.Records() {
						rec.BackScale = 1 / float64(m*ss)
					}
				}
				if !sameBack(got, cloneBack(net)) {
					t.Errorf("%s: records differ from those built by hand with the same seed", name)
				}
			}
		}
	}
}

// TestBackpropExamplesFisherGradientsMean checks that fisher_gradients with
// Examples = 3 of n = 5 estimates the true Fisher of the sub-batch: with
// S = 300 samples per example, curvature.DenseBlock of the records (the
// mean over the samples) lies within 25% (relative Frobenius norm, over all
// layers) of the exact block of the fisher_exact records of the same
// sub-batch, and closer to it than the estimate from 3 samples. (The error
// of this unbiased estimate falls as 1/√S; Suite7 checks the rate.)
func TestBackpropExamplesFisherGradientsMean(t *testing.T) {
	const n, m = 5, 3
	for ci, c := range cases {
		net, X, Y := setup(c, n, uint64(360+ci))
		exact := Backprop{Estimator: FisherExact, Examples: m}
		exact.Fill(net, c.loss, X, Y)
		var blocks []*mat.SymDense
		norm2 := 0.0
		for _, rec := range net.Records() {
			b := &mat.SymDense{}
			curvature.DenseBlock(b, rec)
			blocks = append(blocks, b)
			norm2 += mat.Norm(b, 2) * mat.Norm(b, 2)
		}
		relErr := func(s int) float64 {
			bp := Backprop{Estimator: FisherGradients, Samples: s, Examples: m, Rand: newRand(uint64(370 + ci))}
			bp.Fill(net, c.loss, X, Y)
			e2 := 0.0
			for l, rec := range net.Records() {
				var b mat.SymDense
				curvature.DenseBlock(&b, rec)
				var d mat.Dense
				d.Sub(&b, blocks[l])
				e2 += mat.Norm(&d, 2) * mat.Norm(&d, 2)
			}
			return e2 / norm2
		}
		few, many := relErr(3), relErr(300)
		t.Logf("%s: squared relative error %.4g at S=3, %.4g at S=300", c.name, few, many)
		if many > 0.25*0.25 || many >= few {
			t.Errorf("%s: squared relative error %.4g at S=300 (%.4g at S=3), want < 0.0625 and below that at S=3", c.name, many, few)
		}
	}
}

// allEstimators returns a Backprop of every estimator (and split, and
// sample count) that the tests of Examples go through.
func allEstimators() []Backprop {
	return []Backprop{
		{Estimator: GGNExact},
		{Estimator: GGNExact, Split: nn.SplitOutputs},
		{Estimator: FisherExact},
		{Estimator: FisherEmpirical},
		{Estimator: FisherGradients},
		{Estimator: FisherGradients, Samples: 3},
	}
}

// TestBackpropExamplesWhole checks that Examples = 0 and Examples ≥ n leave
// Fill as it was: for every estimator (fisher_gradients with one and three
// samples, the same seed) the records are bit-identical to those of the
// nn passes Fill ran before Examples existed (BackwardGN, BackwardFisher,
// BackwardVectors of Grad, BackwardMC; for several samples the stacking by
// hand, done in TestBackpropExamplesFisherGradients for m = n), and those
// of Examples = 0, n and n+2 are identical.
func TestBackpropExamplesWhole(t *testing.T) {
	const n = 5
	for ci, c := range cases {
		net, X, Y := setup(c, n, uint64(380+ci))
		for bi, bp := range allEstimators() {
			name := fmt.Sprintf("%s/%v/%v/Samples=%d", c.name, bp.Estimator, bp.Split, bp.Samples)
			seed := uint64(390 + 10*ci + bi)
			var want []backCopy
			for _, e := range []int{0, n, n + 2} {
				b := bp
				b.Examples = e
				b.Rand = newRand(seed)
				b.Fill(net, c.loss, X, Y)
				got := cloneBack(net)
				if want == nil {
					want = got
					continue
				}
				if !sameBack(got, want) {
					t.Errorf("%s: Examples=%d differs from Examples=0", name, e)
				}
			}
			net.Forward(X)
			net.Backward(c.loss, Y)
			switch bp.Estimator {
			case GGNExact:
				net.BackwardGN(c.loss, Y, bp.Split)
			case FisherExact:
				net.BackwardFisher(c.loss)
			case FisherEmpirical:
				recs := net.Records()
				net.BackwardVectors(recs[len(recs)-1].Grad, nil)
			case FisherGradients:
				if bp.Samples > 1 {
					continue
				}
				net.BackwardMC(c.loss, newRand(seed))
			}
			if !sameBack(cloneBack(net), want) {
				t.Errorf("%s: Examples=0 differs from the nn pass", name)
			}
		}
	}
}

// TestBackpropExamplesNoAlloc checks that a second Fill with Examples = 3
// of n = 5 allocates nothing, for every estimator and loss, targets given
// as a *mat.Dense or not — except where the loss's own pass allocates
// (the quadratic loss's SqrtD after a softmax builds a jacobian per call),
// where it allocates no more than a Fill without Examples.
func TestBackpropExamplesNoAlloc(t *testing.T) {
	const n = 5
	for ci, c := range cases {
		net, X, Y := setup(c, n, uint64(400+ci))
		for _, bp := range allEstimators() {
			for _, y := range []mat.Matrix{Y, opaque{Y}} {
				allocs := func(e int) float64 {
					b := bp
					b.Examples = e
					b.Rand = newRand(1)
					b.Fill(net, c.loss, X, y)
					return testing.AllocsPerRun(3, func() { b.Fill(net, c.loss, X, y) })
				}
				whole, sub := allocs(0), allocs(3)
				name := fmt.Sprintf("%s/%v/%v/Samples=%d/%T", c.name, bp.Estimator, bp.Split, bp.Samples, y)
				if sub > whole || (whole == 0) != (sub == 0) {
					t.Errorf("%s: Fill allocates %g times with Examples=3, %g without", name, sub, whole)
				}
			}
		}
	}
}

// TestBackpropExamplesNegative checks the panic on a negative Examples.
func TestBackpropExamplesNegative(t *testing.T) {
	c := cases[0]
	net, X, Y := setup(c, 3, 410)
	bp := Backprop{Examples: -1}
	expectPanic(t, "Examples=-1", func() { bp.Fill(net, c.loss, X, Y) }, "Backprop.Fill: Examples = -1")
}

// opaque hides a matrix's concrete type, as a target matrix that is not a
// *mat.Dense.
type opaque struct{ mat.Matrix }
