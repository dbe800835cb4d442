package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Activation is the nonlinearity φ that follows an affine layer,
// h = φ(a) (thesis §2.1.2). It acts on batches, one example per row.
//
// The activations of this package are the elementwise Identity, Sigmoid,
// Tanh and ReLU, and the row-wise Softmax, which is allowed only on the
// output layer. Implementations need not be safe for concurrent use (a
// Network calls them from one goroutine at a time); those of this package are.
type Activation interface {
	// Name returns the activation's name, e.g. "sigmoid".
	Name() string

	// Forward writes dst = φ(a) row by row. dst and a have the same shape
	// and may be the same matrix.
	Forward(dst, a *mat.Dense)

	// Backward writes into row r of dst the vector–jacobian product
	//
	//	dst_r = J_φ(a_i)ᵀ g_r,   i = idx[r] (i = r when idx is nil),
	//
	// where a_i is row i of a and f_i = φ(a_i) is row i of f
	// (J_{h_{l+1}}^{a_l} of thesis §2.1.2). dst and g have the same shape
	// and may be the same matrix. The jacobian of every activation of this
	// package is symmetric, so Backward also computes the jacobian–vector
	// product J_φ v.
	Backward(dst, g, a, f *mat.Dense, idx []int)
}

// Elementwise is an activation applied to each unit separately,
// f_j = φ(a_j), so that J_φ(a) = diag(φ'(a)) (thesis §2.1.2).
// Implementations need not be safe for concurrent use; those of this
// package are.
type Elementwise interface {
	Activation

	// Func returns φ(a).
	Func(a float64) float64

	// Deriv returns φ'(a), given a and f = φ(a).
	Deriv(a, f float64) float64

	// Deriv2 returns φ″(a), given a and f = φ(a).
	Deriv2(a, f float64) float64
}

var (
	_ Elementwise = Identity{}
	_ Elementwise = Sigmoid{}
	_ Elementwise = Tanh{}
	_ Elementwise = ReLU{}
	_ Activation  = Softmax{}
)

// Identity is the activation φ(a) = a. Values of Identity are safe for
// concurrent use.
type Identity struct{}

// Name returns "identity".
func (Identity) Name() string { return "identity" }

// Func returns a.
func (Identity) Func(a float64) float64 { return a }

// Deriv returns 1.
func (Identity) Deriv(a, f float64) float64 { return 1 }

// Deriv2 returns 0.
func (Identity) Deriv2(a, f float64) float64 { return 0 }

// Forward copies a into dst.
func (Identity) Forward(dst, a *mat.Dense) {
	checkPair("Identity.Forward", dst, a)
	if dst != a {
		dst.Copy(a)
	}
}

// Backward copies g into dst: the jacobian is the identity.
func (Identity) Backward(dst, g, a, f *mat.Dense, idx []int) {
	checkBackward("Identity.Backward", dst, g, a, f, idx)
	if dst != g {
		dst.Copy(g)
	}
}

// Sigmoid is the logistic activation φ(a) = 1/(1+exp(−a)), evaluated without
// overflow for any a, with φ' = φ(1−φ) and φ″ = φ(1−φ)(1−2φ). Values of
// Sigmoid are safe for concurrent use.
type Sigmoid struct{}

// Name returns "sigmoid".
func (Sigmoid) Name() string { return "sigmoid" }

// Func returns 1/(1+exp(−a)).
func (Sigmoid) Func(a float64) float64 { return sigmoid(a) }

// Deriv returns f(1−f).
func (Sigmoid) Deriv(a, f float64) float64 { return f * (1 - f) }

// Deriv2 returns f(1−f)(1−2f).
func (Sigmoid) Deriv2(a, f float64) float64 { return f * (1 - f) * (1 - 2*f) }

// Forward writes dst = σ(a) elementwise, on several goroutines for large
// batches.
func (Sigmoid) Forward(dst, a *mat.Dense) {
	checkPair("Sigmoid.Forward", dst, a)
	r, c := a.Dims()
	if !parallel(r, c) {
		sigmoidRows(dst, a, 0, r)
		return
	}
	forRows(r, func(lo, hi int) { sigmoidRows(dst, a, lo, hi) })
}

func sigmoidRows(dst, a *mat.Dense, lo, hi int) {
	for i := lo; i < hi; i++ {
		d, s := row(dst, i), row(a, i)
		d = d[:len(s)]
		for j, v := range s {
			d[j] = sigmoid(v)
		}
	}
}

// Backward writes dst_r = f_i(1−f_i) ⊙ g_r.
func (Sigmoid) Backward(dst, g, a, f *mat.Dense, idx []int) {
	checkBackward("Sigmoid.Backward", dst, g, a, f, idx)
	r, c := g.Dims()
	if !parallel(r, c) {
		sigmoidBackRows(dst, g, f, idx, 0, r)
		return
	}
	forRows(r, func(lo, hi int) { sigmoidBackRows(dst, g, f, idx, lo, hi) })
}

func sigmoidBackRows(dst, g, f *mat.Dense, idx []int, lo, hi int) {
	for k := lo; k < hi; k++ {
		d, gr, fr := row(dst, k), row(g, k), row(f, exampleIndex(idx, k))
		d, fr = d[:len(gr)], fr[:len(gr)]
		for j, v := range gr {
			d[j] = v * fr[j] * (1 - fr[j])
		}
	}
}

// sigmoid returns 1/(1+exp(−a)) without overflow: with e = exp(−|a|) ≤ 1,
// σ(a) = 1/(1+e) for a ≥ 0 and e/(1+e) otherwise.
func sigmoid(a float64) float64 {
	e := expNonPos(-math.Abs(a))
	s := 1 / (1 + e)
	if a < 0 {
		return e * s
	}
	return s
}

// softplus returns log(1+exp(a)) without overflow or cancellation.
func softplus(a float64) float64 {
	return math.Max(a, 0) + math.Log1p(math.Exp(-math.Abs(a)))
}

// Tanh is the activation φ(a) = tanh(a), with φ' = 1−φ² and φ″ = −2φ(1−φ²).
// Values of Tanh are safe for concurrent use.
type Tanh struct{}

// Name returns "tanh".
func (Tanh) Name() string { return "tanh" }

// Func returns tanh(a).
func (Tanh) Func(a float64) float64 { return math.Tanh(a) }

// Deriv returns 1−f².
func (Tanh) Deriv(a, f float64) float64 { return 1 - f*f }

// Deriv2 returns −2f(1−f²).
func (Tanh) Deriv2(a, f float64) float64 { return -2 * f * (1 - f*f) }

// Forward writes dst = tanh(a) elementwise.
func (Tanh) Forward(dst, a *mat.Dense) {
	checkPair("Tanh.Forward", dst, a)
	r, _ := a.Dims()
	for i := 0; i < r; i++ {
		d, s := row(dst, i), row(a, i)
		for j, v := range s {
			d[j] = math.Tanh(v)
		}
	}
}

// Backward writes dst_r = (1−f_i²) ⊙ g_r.
func (Tanh) Backward(dst, g, a, f *mat.Dense, idx []int) {
	checkBackward("Tanh.Backward", dst, g, a, f, idx)
	r, _ := g.Dims()
	for k := 0; k < r; k++ {
		d, gr, fr := row(dst, k), row(g, k), row(f, exampleIndex(idx, k))
		for j, v := range gr {
			d[j] = v * (1 - fr[j]*fr[j])
		}
	}
}

// ReLU is the rectifier φ(a) = max(a, 0), with φ'(a) = 1 for a > 0 and 0
// otherwise (the derivative at 0 is taken to be 0), and φ″ = 0. Values of
// ReLU are safe for concurrent use.
type ReLU struct{}

// Name returns "relu".
func (ReLU) Name() string { return "relu" }

// Func returns max(a, 0).
func (ReLU) Func(a float64) float64 { return math.Max(a, 0) }

// Deriv returns 1 for a > 0 and 0 otherwise.
func (ReLU) Deriv(a, f float64) float64 {
	if a > 0 {
		return 1
	}
	return 0
}

// Deriv2 returns 0.
func (ReLU) Deriv2(a, f float64) float64 { return 0 }

// Forward writes dst = max(a, 0) elementwise.
func (ReLU) Forward(dst, a *mat.Dense) {
	checkPair("ReLU.Forward", dst, a)
	r, _ := a.Dims()
	for i := 0; i < r; i++ {
		d, s := row(dst, i), row(a, i)
		for j, v := range s {
			if v > 0 {
				d[j] = v
			} else {
				d[j] = 0
			}
		}
	}
}

// Backward writes dst_r = [a_i > 0] ⊙ g_r.
func (ReLU) Backward(dst, g, a, f *mat.Dense, idx []int) {
	checkBackward("ReLU.Backward", dst, g, a, f, idx)
	r, _ := g.Dims()
	for k := 0; k < r; k++ {
		d, gr, ar := row(dst, k), row(g, k), row(a, exampleIndex(idx, k))
		for j, v := range gr {
			if ar[j] > 0 {
				d[j] = v
			} else {
				d[j] = 0
			}
		}
	}
}

// Softmax is the row-wise activation f_j = exp(a_j) / Σ_m exp(a_m),
// evaluated after subtracting max_m a_m so that it cannot overflow. Its
// jacobian is the symmetric matrix J = diag(f) − f fᵀ. A network accepts it
// only on the output layer, where it pairs with CrossEntropy. Values of
// Softmax are safe for concurrent use.
type Softmax struct{}

// Name returns "softmax".
func (Softmax) Name() string { return "softmax" }

// Forward writes each row of dst as the softmax of the same row of a.
func (Softmax) Forward(dst, a *mat.Dense) {
	checkPair("Softmax.Forward", dst, a)
	r, _ := a.Dims()
	for i := 0; i < r; i++ {
		d, s := row(dst, i), row(a, i)
		m := math.Inf(-1)
		for _, v := range s {
			m = math.Max(m, v)
		}
		sum := 0.0
		for j, v := range s {
			e := math.Exp(v - m)
			d[j] = e
			sum += e
		}
		for j := range d {
			d[j] /= sum
		}
	}
}

// Backward writes dst_r = (diag(f_i) − f_i f_iᵀ) g_r = f_i ⊙ (g_r − f_i·g_r),
// which is both the vector–jacobian and the jacobian–vector product.
func (Softmax) Backward(dst, g, a, f *mat.Dense, idx []int) {
	checkBackward("Softmax.Backward", dst, g, a, f, idx)
	r, _ := g.Dims()
	for k := 0; k < r; k++ {
		d, gr, fr := row(dst, k), row(g, k), row(f, exampleIndex(idx, k))
		dot := 0.0
		for j, v := range gr {
			dot += v * fr[j]
		}
		for j, v := range gr {
			d[j] = fr[j] * (v - dot)
		}
	}
}

// logSumExp returns log Σ_j exp(a_j) without overflow.
func logSumExp(a []float64) float64 {
	m := math.Inf(-1)
	for _, v := range a {
		m = math.Max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range a {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

func checkPair(op string, dst, a *mat.Dense) {
	ar, ac := a.Dims()
	checkShape(op, "dst", dst, ar, ac)
}

func checkBackward(op string, dst, g, a, f *mat.Dense, idx []int) {
	gr, gc := g.Dims()
	checkShape(op, "dst", dst, gr, gc)
	n, k := a.Dims()
	if k != gc {
		panic(fmt.Sprintf("nn: %s: a is %d×%d, want %d columns", op, n, k, gc))
	}
	checkShape(op, "f", f, n, k)
	if idx == nil {
		if gr != n {
			panic(fmt.Sprintf("nn: %s: %d rows and no index, want %d rows", op, gr, n))
		}
		return
	}
	if len(idx) != gr {
		panic(fmt.Sprintf("nn: %s: index has length %d, want %d", op, len(idx), gr))
	}
	for _, i := range idx {
		if i < 0 || i >= n {
			panic(fmt.Sprintf("nn: %s: index %d out of range [0,%d)", op, i, n))
		}
	}
}

// activationID are the identifiers of the built-in activations in saved files.
func activationID(a Activation) (uint8, bool) {
	switch a.(type) {
	case Identity:
		return 0, true
	case Sigmoid:
		return 1, true
	case Tanh:
		return 2, true
	case ReLU:
		return 3, true
	case Softmax:
		return 4, true
	}
	return 0, false
}

func activationFromID(id uint8) (Activation, bool) {
	switch id {
	case 0:
		return Identity{}, true
	case 1:
		return Sigmoid{}, true
	case 2:
		return Tanh{}, true
	case 3:
		return ReLU{}, true
	case 4:
		return Softmax{}, true
	}
	return nil, false
}
