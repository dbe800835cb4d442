package nn

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Output is the state of a network's output layer for a batch of n examples
// with k outputs: the activation φ, the pre-activations A (the logits, n×k)
// and the outputs F = φ(A) (n×k), the f of thesis §3.1.4. An Output is safe
// for concurrent use by multiple goroutines as long as none modifies it or
// its matrices.
type Output struct {
	Act  Activation
	A, F *mat.Dense
}

// Dims returns the batch size n and the number of outputs k.
func (o Output) Dims() (n, k int) { return o.A.Dims() }

// Curvature selects the matrix D that sits between the jacobians of a
// curvature matrix J_θᵀ D J_θ. Values of Curvature are safe for concurrent
// use.
type Curvature int

const (
	// GaussNewton is D = ∂²l/∂f², the Gauss–Newton matrix of table 3.I
	// (thesis §3.1.4, appendix A). It depends on the targets.
	GaussNewton Curvature = iota
	// Fisher is the D of table 3.II (thesis §3.2.2, appendix B),
	// E_{y∼p(y|f)}[∇l ∇lᵀ] for targets drawn from the model's predictive
	// distribution. It does not depend on the targets.
	Fisher
)

// String returns "GaussNewton" or "Fisher".
func (c Curvature) String() string {
	switch c {
	case GaussNewton:
		return "GaussNewton"
	case Fisher:
		return "Fisher"
	}
	return fmt.Sprintf("Curvature(%d)", int(c))
}

// Split says where the loss is cut from the network when a curvature matrix
// is written at the output pre-activations a (the logits), G = J_aᵀ D_a J_a
// with J_a the jacobian of a with respect to the parameters.
//
// For the Fisher matrix the two splits give the same D_a. For the
// Gauss–Newton matrix they differ unless the loss is quadratic. Values of
// Split are safe for concurrent use.
type Split int

const (
	// SplitLogits is the matching-loss split (Schraudolph 2002): when the
	// loss matches the output activation (Quadratic with Identity,
	// BinaryCrossEntropy with Sigmoid, CrossEntropy with Softmax), D_a is
	// the Hessian ∂²l(φ(a))/∂a², which is positive semi-definite:
	//
	//	Quadratic + Identity          2I
	//	BinaryCrossEntropy + Sigmoid  diag(f ⊙ (1−f))
	//	CrossEntropy + Softmax        s (diag(f) − f fᵀ),  s = Σ_j y_j (1 for distributions)
	//
	// Quadratic on any other activation is not a matching pair, the Hessian
	// at a is indefinite, and D_a is the pull-back of table 3.I,
	// J_φᵀ (2I) J_φ (diag(2 φ'(a)²) for an elementwise φ), as for
	// SplitOutputs.
	SplitLogits Split = iota
	// SplitOutputs is the split of tables 3.I and 3.II: D = ∂²l/∂f² is taken
	// with respect to the outputs f = φ(a) (the probabilities), and written
	// at the logits as D_a = J_φᵀ D J_φ.
	SplitOutputs
)

// String returns "SplitLogits" or "SplitOutputs".
func (s Split) String() string {
	switch s {
	case SplitLogits:
		return "SplitLogits"
	case SplitOutputs:
		return "SplitOutputs"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// Loss is a per-example loss l(f, y) of the network's output f = φ(a) and a
// target y (thesis §2.1), with the derivatives that backpropagation and the
// curvature matrices of chapter 3 need. All methods read an Output and an
// n×k target matrix y (row i = example i) and panic, with a message prefixed
// "nn: ", on shapes that disagree or on an output activation the loss cannot
// be used with (see Check). Implementations need not be safe for concurrent
// use (a Network calls them from one goroutine at a time); those of this
// package are.
type Loss interface {
	// Name returns the loss's name.
	Name() string

	// Check returns a non-nil error when the loss cannot be used after the
	// output activation act.
	Check(act Activation) error

	// Value returns the risk, the mean over the batch of the per-example
	// loss, (1/n) Σ_i l(f_i, y_i).
	Value(o Output, y *mat.Dense) float64

	// Values writes l(f_i, y_i) into dst[i]; len(dst) must be n.
	Values(dst []float64, o Output, y *mat.Dense)

	// GradA writes into row i of dst (n×k) the gradient ∇_a l of the loss of
	// example i with respect to the output pre-activation a, not divided by
	// n. This is Grad of the output layer's record.
	GradA(dst *mat.Dense, o Output, y *mat.Dense)

	// GradF writes into row i of dst (n×k) the gradient ∇_f l with respect
	// to the output f (the split of tables 3.I and 3.II).
	GradF(dst *mat.Dense, o Output, y *mat.Dense)

	// DOutputs writes into dst (k×k) the matrix D of example i with respect
	// to the outputs f: ∂²l/∂f² of table 3.I for GaussNewton, the D of table
	// 3.II for Fisher.
	DOutputs(dst *mat.Dense, c Curvature, o Output, y *mat.Dense, i int)

	// DLogits writes into dst (k×k) the matrix D_a of example i with
	// respect to the output pre-activation a, for split s (see Split).
	DLogits(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense, i int)

	// SqrtD writes into dst (n·k × k) a square-root factor of D_a: rows
	// i·k … i·k+k−1 hold S_i with S_iᵀ S_i = D_a of example i (DLogits with
	// the same c and s). The rows are vectors in the space of a, to be
	// backpropagated to build J_aᵀ D_a J_a.
	SqrtD(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense)

	// Sample writes into row i of dst (n×k) a target drawn from the model's
	// predictive distribution p(y|f_i), the distribution whose negative
	// log-likelihood is l up to a constant. Gradients of the loss at sampled
	// targets give the Monte-Carlo Fisher, E[∇l ∇lᵀ] = D of table 3.II.
	Sample(dst *mat.Dense, o Output, rng *rand.Rand)
}

// DiagonalLoss is implemented by the losses whose D_a can be diagonal
// (Quadratic and BinaryCrossEntropy on an elementwise output activation):
// DLogitsDiag writes into dst (length k) the diagonal of DLogits(c, s, o, y,
// i) and reports true when D_a is diagonal for o.Act, and writes nothing
// and reports false otherwise. It lets matrix-free curvature code keep n·k
// numbers where DLogits writes n·k². Implementations need not be safe for
// concurrent use; those of this package are.
type DiagonalLoss interface {
	DLogitsDiag(dst []float64, c Curvature, s Split, o Output, y *mat.Dense, i int) bool
}

var (
	_ DiagonalLoss = Quadratic{}
	_ DiagonalLoss = BinaryCrossEntropy{}
)

// checkLossArgs checks that o and y agree and that the loss accepts o.Act.
// It returns n and k.
func checkLossArgs(l Loss, op string, o Output, y *mat.Dense) (n, k int) {
	if o.A == nil || o.F == nil || o.Act == nil {
		panic(fmt.Sprintf("nn: %s.%s: incomplete Output", l.Name(), op))
	}
	n, k = o.A.Dims()
	if r, c := o.F.Dims(); r != n || c != k {
		panic(fmt.Sprintf("nn: %s.%s: F is %d×%d, A is %d×%d", l.Name(), op, r, c, n, k))
	}
	if y != nil {
		if r, c := y.Dims(); r != n || c != k {
			panic(fmt.Sprintf("nn: %s.%s: targets are %d×%d, want %d×%d", l.Name(), op, r, c, n, k))
		}
	}
	if err := l.Check(o.Act); err != nil {
		panic(err.Error())
	}
	return n, k
}

func checkExample(l Loss, op string, i, n int) {
	if i < 0 || i >= n {
		panic(fmt.Sprintf("nn: %s.%s: example %d out of range [0,%d)", l.Name(), op, i, n))
	}
}

func checkCurvature(l Loss, op string, c Curvature, s Split) {
	if c != GaussNewton && c != Fisher {
		panic(fmt.Sprintf("nn: %s.%s: unknown %v", l.Name(), op, c))
	}
	if s != SplitLogits && s != SplitOutputs {
		panic(fmt.Sprintf("nn: %s.%s: unknown %v", l.Name(), op, s))
	}
}

// meanValue returns the mean of the per-example values computed by v.
func meanValue(n int, v func(i int) float64) float64 {
	s := 0.0
	for i := 0; i < n; i++ {
		s += v(i)
	}
	return s / float64(n)
}

// Jacobian writes into dst (k×k) the jacobian J_φ(a_i) of the output
// activation at example i, (J)_{pq} = ∂f_p/∂a_q.
func Jacobian(dst *mat.Dense, o Output, i int) {
	n, k := o.Dims()
	if i < 0 || i >= n {
		panic(fmt.Sprintf("nn: Jacobian: example %d out of range [0,%d)", i, n))
	}
	useDst("Jacobian", dst, k, k)
	eye := mat.NewDense(k, k, nil)
	idx := make([]int, k)
	for j := range idx {
		eye.Set(j, j, 1)
		idx[j] = i
	}
	// Row r of Backward(I) is (J_φᵀ e_r)ᵀ = e_rᵀ J_φ, the r-th row of J_φ.
	o.Act.Backward(dst, eye, o.A, o.F, idx)
}

// pullBack writes dst = Jᵀ d J with J = J_φ(a_i).
func pullBack(dst *mat.Dense, d *mat.Dense, o Output, i int) {
	_, k := o.Dims()
	j := mat.NewDense(k, k, nil)
	Jacobian(j, o, i)
	var t mat.Dense
	t.Mul(d, j)
	dst.Mul(j.T(), &t)
}

// diagOnly sets dst (k×k) to diag(d).
// diagInto writes d(j) into dst[j] for every j of a k-vector.
func diagInto(l Loss, op string, dst []float64, k int, d func(j int) float64) {
	checkLen(l, op, dst, k)
	for j := range dst {
		dst[j] = d(j)
	}
}

func diagOnly(dst *mat.Dense, d func(j int) float64) {
	dst.Zero()
	k, _ := dst.Dims()
	for j := 0; j < k; j++ {
		dst.Set(j, j, d(j))
	}
}

func checkLen(l Loss, op string, dst []float64, n int) {
	if len(dst) != n {
		panic(fmt.Sprintf("nn: %s.%s: len(dst) is %d, want %d", l.Name(), op, len(dst), n))
	}
}
