package nn

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

var _ Loss = Quadratic{}

// Quadratic is the squared error summed over the k outputs, not halved
// (thesis appendix A.1):
//
//	l(f, y) = ‖f − y‖²,   ∇_f l = 2(f − y),   ∂²l/∂f² = 2I.
//
// (Appendix A.1 and table 3.I print I for ∂²l/∂f²; the factor 2 is right for
// the unhalved loss.) It is −log p(y|f) up to a constant for the Gaussian
// p(y|f) = N(y; f, σ²I) with σ² = ½, since −log N(y; f, σ²I) =
// ‖y − f‖²/(2σ²) + (k/2) log(2πσ²). So the Fisher D of table 3.II is
// E[∇_f l ∇_f lᵀ] = 4 E[(f−y)(f−y)ᵀ] = 4σ² I = 2I, equal to the Gauss–Newton
// D, and Sample draws y ∼ N(f, ½ I).
//
// Quadratic works after any output activation. For a non-identity φ,
//
//	∇_a l = J_φᵀ 2(f − y)   (= 2(f − y) ⊙ φ'(a) for an elementwise φ),
//
// and D_a = J_φᵀ (2I) J_φ (= diag(2 φ'(a)²)) for both curvatures and both
// splits. Values of Quadratic are safe for concurrent use.
type Quadratic struct{}

// Name returns "quadratic".
func (Quadratic) Name() string { return "quadratic" }

// Check returns nil: the quadratic loss accepts every output activation.
func (Quadratic) Check(act Activation) error { return nil }

// Value returns (1/n) Σ_i ‖f_i − y_i‖², computed from the outputs F.
func (q Quadratic) Value(o Output, y *mat.Dense) float64 {
	n, _ := checkLossArgs(q, "Value", o, y)
	s := 0.0
	for i := 0; i < n; i++ {
		s += quadratic(row(o.F, i), row(y, i))
	}
	return s / float64(n)
}

// Values writes dst[i] = ‖f_i − y_i‖², computed from the outputs F.
func (q Quadratic) Values(dst []float64, o Output, y *mat.Dense) {
	n, _ := checkLossArgs(q, "Values", o, y)
	checkLen(q, "Values", dst, n)
	for i := range dst {
		dst[i] = quadratic(row(o.F, i), row(y, i))
	}
}

func quadratic(f, y []float64) float64 {
	s := 0.0
	for j, v := range f {
		d := v - y[j]
		s += d * d
	}
	return s
}

// GradF writes dst = 2(F − y).
func (q Quadratic) GradF(dst *mat.Dense, o Output, y *mat.Dense) {
	n, k := checkLossArgs(q, "GradF", o, y)
	checkShape("quadratic.GradF", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f, t := row(dst, i), row(o.F, i), row(y, i)
		for j, v := range f {
			d[j] = 2 * (v - t[j])
		}
	}
}

// GradA writes row i of dst as J_φ(a_i)ᵀ 2(f_i − y_i), the gradient with
// respect to the output pre-activation through the output activation.
func (q Quadratic) GradA(dst *mat.Dense, o Output, y *mat.Dense) {
	q.GradF(dst, o, y)
	o.Act.Backward(dst, dst, o.A, o.F, nil)
}

// DOutputs writes dst = 2I for both curvatures (tables 3.I and 3.II with
// σ² = ½).
func (q Quadratic) DOutputs(dst *mat.Dense, c Curvature, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(q, "DOutputs", o, y)
	checkCurvature(q, "DOutputs", c, SplitOutputs)
	checkExample(q, "DOutputs", i, n)
	useDst("quadratic.DOutputs", dst, k, k)
	diagOnly(dst, func(int) float64 { return 2 })
}

// DLogits writes dst = J_φᵀ (2I) J_φ at example i, for both curvatures and
// both splits; it is diag(2 φ'(a_i)²) for an elementwise φ and 2I for
// Identity.
func (q Quadratic) DLogits(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(q, "DLogits", o, y)
	checkCurvature(q, "DLogits", c, s)
	checkExample(q, "DLogits", i, n)
	useDst("quadratic.DLogits", dst, k, k)
	if d, ok := q.diagD(o, i); ok {
		diagOnly(dst, d)
		return
	}
	two := mat.NewDense(k, k, nil)
	diagOnly(two, func(int) float64 { return 2 })
	pullBack(dst, two, o, i)
}

// diagD returns the diagonal of D_a = diag(2 φ'(a_i)²) at example i for
// an elementwise φ, and false for any other activation.
func (q Quadratic) diagD(o Output, i int) (func(j int) float64, bool) {
	e, ok := o.Act.(Elementwise)
	if !ok {
		return nil, false
	}
	a, f := row(o.A, i), row(o.F, i)
	return func(j int) float64 {
		d := e.Deriv(a[j], f[j])
		return 2 * d * d
	}, true
}

// DLogitsDiag writes the diagonal of DLogits, diag(2 φ'(a_i)²), for an
// elementwise φ and reports true; for any other activation it reports
// false (see DiagonalLoss).
func (q Quadratic) DLogitsDiag(dst []float64, c Curvature, s Split, o Output, y *mat.Dense, i int) bool {
	n, k := checkLossArgs(q, "DLogitsDiag", o, y)
	checkCurvature(q, "DLogitsDiag", c, s)
	checkExample(q, "DLogitsDiag", i, n)
	d, ok := q.diagD(o, i)
	if ok {
		diagInto(q, "DLogitsDiag", dst, k, d)
	}
	return ok
}

// SqrtD writes S_i = √2 J_φ(a_i) into rows i·k … i·k+k−1 of dst, for both
// curvatures and both splits; for an elementwise φ row i·k+j is
// √2 φ'(a_ij) e_j.
func (q Quadratic) SqrtD(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense) {
	n, k := checkLossArgs(q, "SqrtD", o, y)
	checkCurvature(q, "SqrtD", c, s)
	useDst("quadratic.SqrtD", dst, n*k, k)
	if e, ok := o.Act.(Elementwise); ok {
		for i := 0; i < n; i++ {
			a, f := row(o.A, i), row(o.F, i)
			for j := 0; j < k; j++ {
				r := row(dst, i*k+j)
				clear(r)
				r[j] = math.Sqrt2 * e.Deriv(a[j], f[j])
			}
		}
		return
	}
	jac := mat.NewDense(k, k, nil)
	for i := 0; i < n; i++ {
		Jacobian(jac, o, i)
		for j := 0; j < k; j++ {
			r, jr := row(dst, i*k+j), row(jac, j)
			for m, v := range jr {
				r[m] = math.Sqrt2 * v
			}
		}
	}
}

// Sample writes y_i = f_i + z_i/√2 with z_i ∼ N(0, I): a draw from
// N(f_i, ½ I), the Gaussian whose negative log-likelihood is ‖f − y‖² up to
// a constant.
func (q Quadratic) Sample(dst *mat.Dense, o Output, rng *rand.Rand) {
	n, k := checkLossArgs(q, "Sample", o, nil)
	checkShape("quadratic.Sample", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f := row(dst, i), row(o.F, i)
		for j, v := range f {
			d[j] = v + rng.NormFloat64()/math.Sqrt2
		}
	}
}
