package network

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// inverseActivation writes into dst the pre-activations a with φ(a) = f for
// the output activations of the suite (softmax up to the additive constant,
// which the losses ignore).
func inverseActivation(dst, f *mat.Dense, act nn.Activation) {
	dst.Apply(func(_, _ int, v float64) float64 {
		switch act.(type) {
		case nn.Identity:
			return v
		case nn.Sigmoid:
			return math.Log(v / (1 - v))
		case nn.Tanh:
			return math.Atanh(v)
		case nn.Softmax:
			return math.Log(v)
		}
		panic("no inverse for " + act.Name())
	}, f)
}

// linearisedRisk returns δ ↦ (1/n) Σ_i l(z_i + J_i δ, y_i), the loss
// composed with the network linearised at the split point: z = a (logits,
// then f = φ(a)) when atLogits, z = f (outputs) otherwise.
func linearisedRisk(loss nn.Loss, act nn.Activation, z *mat.Dense, J []*mat.Dense, Y *mat.Dense, atLogits bool) func([]float64) float64 {
	n, k := z.Dims()
	A := mat.NewDense(n, k, nil)
	F := mat.NewDense(n, k, nil)
	var dz mat.VecDense
	return func(delta []float64) float64 {
		d := mat.NewVecDense(len(delta), delta)
		for i := 0; i < n; i++ {
			dz.MulVec(J[i], d)
			for j := 0; j < k; j++ {
				v := z.At(i, j) + dz.AtVec(j)
				if atLogits {
					A.Set(i, j, v)
				} else {
					F.Set(i, j, v)
				}
			}
		}
		if atLogits {
			act.Forward(F, A)
		} else {
			inverseActivation(A, F, act)
		}
		return loss.Value(nn.Output{Act: act, A: A, F: F}, Y)
	}
}

// TestSuite1_LossD_GNIsHessianOfLinearisedLoss proves that the D matrices
// of table 3.I that nn provides (DLogits at the matching-loss split,
// DOutputs at the outputs), put between the explicit jacobians, give the
// exact Hessian of the loss composed with the network linearised at the
// split point: GaussNewtonMatrix equals the finite-difference Hessian of
// δ ↦ (1/n) Σ_i l(z_i + J_i δ, y_i), for every loss and both splits (at
// the logits only for matching pairs: nn's D_a for a non-matching pair is
// the pull-back of the output split, compared there).
// Tolerance: central second differences with step 1e-4, |diff| ≤ 1e-6 +
// 1e-5·max|G| (truncation ~h²·l⁗ ≈ 1e-8, rounding ~ε/h² ≈ 1e-8).
func TestSuite1_LossD_GNIsHessianOfLinearisedLoss(t *testing.T) {
	for ci, c := range cases {
		for _, s := range splits {
			net, X, Y := setup(c, 4, uint64(10+ci))
			atLogits := s == nn.SplitLogits && c.matching()
			js := s
			if !atLogits {
				js = nn.SplitOutputs
			}
			J := Jacobians(net, X, js)
			o := net.Output()
			z := mat.DenseCopyOf(o.F)
			if atLogits {
				z = mat.DenseCopyOf(o.A)
			}
			var gn mat.SymDense
			GaussNewtonMatrix(&gn, net, c.loss, X, Y, nn.GaussNewton, s)
			f := linearisedRisk(c.loss, o.Act, z, J, Y, atLogits)
			var want mat.SymDense
			fd.Hessian(&want, f, make([]float64, gn.SymmetricDim()), &fd.Settings{Formula: fd.Central, Step: 1e-4})
			testutil.EqualApprox(t, c.name+"/"+s.String(), &gn, &want, 1e-6, 1e-5)
		}
	}
}

// outcome is a target with its probability under the model.
type outcome struct {
	y []float64
	p float64
}

// predictive enumerates a distribution over targets whose second moments
// of ∇l are those of the model's predictive distribution at the output f:
// exactly the categorical distribution for the cross-entropy, the 2^k
// Bernoulli outcomes for the binary cross-entropy, and for the quadratic
// loss (y ∼ N(f, ½I), ∇_f l = 2(f − y) linear in y) the 2k points
// f ± √(k/2) e_j of weight 1/(2k), which have the same mean and covariance.
func predictive(loss nn.Loss, f []float64) []outcome {
	k := len(f)
	var out []outcome
	switch loss.(type) {
	case nn.CrossEntropy:
		for t := 0; t < k; t++ {
			y := make([]float64, k)
			y[t] = 1
			out = append(out, outcome{y, f[t]})
		}
	case nn.BinaryCrossEntropy:
		for m := 0; m < 1<<k; m++ {
			y := make([]float64, k)
			p := 1.0
			for j := 0; j < k; j++ {
				if m>>j&1 == 1 {
					y[j] = 1
					p *= f[j]
				} else {
					p *= 1 - f[j]
				}
			}
			out = append(out, outcome{y, p})
		}
	case nn.Quadratic:
		r := math.Sqrt(float64(k) / 2)
		for j := 0; j < k; j++ {
			for _, sign := range []float64{-1, 1} {
				y := append([]float64(nil), f...)
				y[j] += sign * r
				out = append(out, outcome{y, 1 / float64(2*k)})
			}
		}
	}
	return out
}

// TestSuite1_FisherDIsExpectationOverModel proves that the Fisher built
// with the D of table 3.II (appendix B) is the expectation over targets
// drawn from the model of the outer product of the parameter gradients
// (thesis §3.2.2): FisherMatrix equals
//
//	(1/n) Σ_i E_{ỹ∼p(·|x_i)} [∇_θ l(f(x_i), ỹ) ∇_θ l(f(x_i), ỹ)ᵀ],
//
// with the gradients from nn's Backward on one example at a time and the
// expectation computed exactly by enumeration (see predictive). The
// Monte-Carlo version is suite 7. Tolerance: 1e-12·max|F| + 1e-14.
func TestSuite1_FisherDIsExpectationOverModel(t *testing.T) {
	for ci, c := range cases {
		net, X, _ := setup(c, 4, uint64(20+ci))
		var fisher mat.SymDense
		FisherMatrix(&fisher, net, c.loss, X)
		n, _ := X.Dims()
		p := net.NumParams()
		want := mat.NewSymDense(p, nil)
		for i := 0; i < n; i++ {
			x := mat.NewDense(1, X.RawMatrix().Cols, X.RawRowView(i))
			f := append([]float64(nil), net.Forward(x).RawRowView(0)...)
			for _, oc := range predictive(c.loss, f) {
				net.Forward(x)
				net.Backward(c.loss, mat.NewDense(1, len(oc.y), oc.y))
				g := mat.NewVecDense(p, net.ParamGrads(nil))
				want.SymRankOne(want, oc.p/float64(n), g)
			}
		}
		testutil.EqualApprox(t, c.name, &fisher, want, 1e-14, 1e-12)
	}
}
