package network

import (
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite2_HessianClosedForm proves that the analytic Hessian (the
// R-operator of NewHessianOperator applied to unit vectors) equals the closed forms
// of one-layer models, with h̃ = (x, 1) and θ = [vec(W); b]:
//
//	linear, quadratic loss ‖Wx+b−y‖²:      H = (2/n) Σ_i h̃_i h̃_iᵀ ⊗ I   (slip 1: 2, not 1)
//	logistic regression (1 output, BCE):  H = (1/n) Σ_i σ_i(1−σ_i) h̃_i h̃_iᵀ
//	k independent logistic outputs:       H = (1/n) Σ_i h̃_i h̃_iᵀ ⊗ diag(σ_i ⊙ (1−σ_i))
//	softmax regression (CE):              H = (1/n) Σ_i h̃_i h̃_iᵀ ⊗ s_i (diag f_i − f_i f_iᵀ)
//
// with s_i = Σ_j y_ij. Tolerance: 1e-12·max|H| + 1e-15.
func TestSuite2_HessianClosedForm(t *testing.T) {
	tests := []struct {
		name string
		c    netCase
		d    func(f, y []float64) *mat.Dense // output-side matrix of example i
	}{
		{"linear/quadratic", netCase{"", []int{4, 3}, []nn.Activation{nn.Identity{}}, nn.Quadratic{}},
			func(f, y []float64) *mat.Dense {
				d := mat.NewDense(len(f), len(f), nil)
				for j := range f {
					d.Set(j, j, 2)
				}
				return d
			}},
		{"logistic", netCase{"", []int{4, 1}, []nn.Activation{nn.Sigmoid{}}, nn.BinaryCrossEntropy{}},
			func(f, y []float64) *mat.Dense { return mat.NewDense(1, 1, []float64{f[0] * (1 - f[0])}) }},
		{"logistic/3 outputs", netCase{"", []int{4, 3}, []nn.Activation{nn.Sigmoid{}}, nn.BinaryCrossEntropy{}},
			func(f, y []float64) *mat.Dense {
				d := mat.NewDense(len(f), len(f), nil)
				for j := range f {
					d.Set(j, j, f[j]*(1-f[j]))
				}
				return d
			}},
		{"softmax regression", netCase{"", []int{4, 3}, []nn.Activation{nn.Softmax{}}, nn.CrossEntropy{}},
			func(f, y []float64) *mat.Dense {
				s := 0.0
				for _, v := range y {
					s += v
				}
				d := mat.NewDense(len(f), len(f), nil)
				for p := range f {
					for q := range f {
						v := -f[p] * f[q]
						if p == q {
							v += f[p]
						}
						d.Set(p, q, s*v)
					}
				}
				return d
			}},
	}
	for ti, tc := range tests {
		net, X, Y := setup(tc.c, 7, uint64(30+ti))
		var h mat.SymDense
		HessianMatrix(&h, net, tc.c.loss, X, Y)
		F := net.Forward(X)
		n, _ := X.Dims()
		p := net.NumParams()
		want := mat.NewDense(p, p, nil)
		for i := 0; i < n; i++ {
			ht := testutil.Augmented(X.RawRowView(i))
			hh := mat.NewDense(len(ht), len(ht), nil)
			hh.Outer(1/float64(n), mat.NewVecDense(len(ht), ht), mat.NewVecDense(len(ht), ht))
			var term mat.Dense
			kron.Product(&term, hh, tc.d(F.RawRowView(i), Y.RawRowView(i)))
			want.Add(want, &term)
		}
		testutil.EqualApprox(t, tc.name, &h, want, 1e-15, 1e-12)
	}
}

// paramGradient returns θ ↦ ∇_θ R from nn's Forward and Backward, restoring
// nothing: callers reset the parameters afterwards.
func paramGradient(net *nn.Network, loss nn.Loss, X, Y *mat.Dense) func(g, theta []float64) {
	return func(g, theta []float64) {
		net.SetParams(theta)
		net.Forward(X)
		net.Backward(loss, Y)
		net.ParamGrads(g)
	}
}

// TestSuite2_HessianFD proves that the analytic Hessian of three-layer
// sigmoid/tanh networks, for every loss (and the quadratic loss after
// sigmoid and softmax outputs), equals the finite-difference jacobian of
// the analytic gradient (nn's ParamGrads after Forward and Backward,
// differenced by SetParams), and that the R-operator is symmetric,
// uᵀ(Hv) = vᵀ(Hu). Tolerances: central differences with step 1e-5,
// |diff| ≤ 1e-7 + 1e-6·max|H| (truncation ~h²·g‴ ≈ 1e-10, rounding
// ~ε/h ≈ 1e-11); symmetry to 1e-12 relative.
func TestSuite2_HessianFD(t *testing.T) {
	for ci, c := range cases {
		net, X, Y := setup(c, 5, uint64(40+ci))
		var h mat.SymDense
		HessianMatrix(&h, net, c.loss, X, Y)
		theta := net.Params(nil)
		p := len(theta)
		want := mat.NewDense(p, p, nil)
		fd.Jacobian(want, paramGradient(net, c.loss, X, Y), theta, &fd.JacobianSettings{Formula: fd.Central, Step: 1e-5})
		net.SetParams(theta)
		testutil.EqualApprox(t, c.name, &h, want, 1e-7, 1e-6)

		op := NewHessianOperator(net, c.loss, X, Y)
		rng := newRand(uint64(50 + ci))
		u, v := testutil.RandVec(rng, p), testutil.RandVec(rng, p)
		var hu, hv mat.VecDense
		op.MulVec(&hu, u)
		op.MulVec(&hv, v)
		a, b := mat.Dot(u, &hv), mat.Dot(v, &hu)
		if d := (a - b) / (mat.Norm(&hu, 2) * mat.Norm(v, 2)); d > 1e-12 || d < -1e-12 {
			t.Errorf("%s: uᵀHv = %.15g, vᵀHu = %.15g", c.name, a, b)
		}
	}
}
