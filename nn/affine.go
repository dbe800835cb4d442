package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Affine is a dense layer a = W h + b, W of shape n_out × n_in, followed by
// an activation h' = φ(a) (thesis §2.1.2). For a batch H (n × n_in, one
// example per row) it computes A = H Wᵀ + 1 bᵀ with one gemm.
//
// The layer owns its parameters and a per-layer record whose W and B are the
// very same matrices, so that optimizers updating the record's W and B in
// place update the layer. Do not replace the record's W or B.
type Affine struct {
	w   *mat.Dense
	b   *mat.VecDense
	act Activation
	rec secondorder.Layer

	a    *mat.Dense // pre-activations of the last forward pass, n × n_out
	h    *mat.Dense // outputs φ(a), n × n_out; the next layer's Input
	back *mat.Dense // backing store of rec.Back
}

// NewAffine returns an affine layer with n_in inputs, n_out outputs and
// activation act, with zero weights and biases. Its record has W, B, GradW
// and GradB set; Input and Grad are set by a Network's forward pass.
func NewAffine(in, out int, act Activation) *Affine {
	if in <= 0 || out <= 0 {
		panic(fmt.Sprintf("nn: NewAffine: sizes %d→%d must be positive", in, out))
	}
	if act == nil {
		panic("nn: NewAffine: nil activation")
	}
	l := &Affine{
		w:    mat.NewDense(out, in, nil),
		b:    mat.NewVecDense(out, nil),
		act:  act,
		a:    &mat.Dense{},
		h:    &mat.Dense{},
		back: &mat.Dense{},
	}
	l.rec = secondorder.Layer{
		W:     l.w,
		B:     l.b,
		Grad:  &mat.Dense{},
		GradW: mat.NewDense(out, in, nil),
		GradB: mat.NewVecDense(out, nil),
	}
	return l
}

// Dims returns n_out and n_in.
func (l *Affine) Dims() (out, in int) { return l.w.Dims() }

// W returns the weights, n_out × n_in, shared with the record.
func (l *Affine) W() *mat.Dense { return l.w }

// B returns the biases, n_out, shared with the record.
func (l *Affine) B() *mat.VecDense { return l.b }

// Activation returns the layer's activation.
func (l *Affine) Activation() Activation { return l.act }

// Record returns the layer's record.
func (l *Affine) Record() *secondorder.Layer { return &l.rec }

// PreActivations returns A = H Wᵀ + 1 bᵀ of the last forward pass (n × n_out),
// owned by the layer.
func (l *Affine) PreActivations() *mat.Dense { return l.a }

// Outputs returns φ(A) of the last forward pass (n × n_out), owned by the
// layer.
func (l *Affine) Outputs() *mat.Dense { return l.h }

// Linear writes dst = h Wᵀ + 1 bᵀ for a batch h (n × n_in) into dst
// (n × n_out), with one gemm.
func (l *Affine) Linear(dst, h *mat.Dense) {
	out, in := l.w.Dims()
	n, c := h.Dims()
	if c != in {
		panic(fmt.Sprintf("nn: Affine.Linear: input is %d×%d, want n×%d", n, c, in))
	}
	checkShape("Affine.Linear", "dst", dst, n, out)
	// Start from the bias rows and accumulate the product onto them
	// (beta = 1): one pass over dst instead of a zeroing pass and a bias
	// pass.
	b := l.b.RawVector()
	for i := 0; i < n; i++ {
		r := row(dst, i)
		if b.Inc == 1 {
			copy(r, b.Data[:len(r)])
			continue
		}
		for j := range r {
			r[j] = b.Data[j*b.Inc]
		}
	}
	gemm(blas.NoTrans, blas.Trans, 1, h, l.w, 1, dst)
}

// resize shapes the layer's batch buffers for n examples.
func (l *Affine) resize(n int) {
	out, _ := l.w.Dims()
	resize(l.a, n, out)
	resize(l.h, n, out)
	resize(l.rec.Grad, n, out)
}

// forward computes A = H Wᵀ + 1 bᵀ and φ(A) from the record's Input.
func (l *Affine) forward() {
	l.Linear(l.a, l.rec.Input)
	l.act.Forward(l.h, l.a)
}

// paramGrads fills GradW = (1/n) Gradᵀ Input and GradB = (1/n) Σ_i Grad_i
// (thesis §2.1.2).
func (l *Affine) paramGrads() {
	n, _ := l.rec.Grad.Dims()
	inv := 1 / float64(n)
	gemm(blas.Trans, blas.NoTrans, inv, l.rec.Grad, l.rec.Input, 0, l.rec.GradW)
	gb := l.rec.GradB.RawVector()
	for j := 0; j < gb.N; j++ {
		gb.Data[j*gb.Inc] = 0
	}
	for i := 0; i < n; i++ {
		for j, v := range row(l.rec.Grad, i) {
			gb.Data[j*gb.Inc] += v
		}
	}
	for j := 0; j < gb.N; j++ {
		gb.Data[j*gb.Inc] *= inv
	}
}
