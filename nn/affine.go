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
//
// In a Network a layer may also normalise its affine output before the
// activation (batch normalisation, see Norm and Network.SetNorm) and whiten
// its input (natural neural networks, see Network.SetWhitened):
//
//	h_e = U (h − μ)          (whitened input; h_e = h without whitening)
//	a   = W h_e + b          (the record's Input is h_e, its Grad is ∇_a l)
//	z   = BN(a)              (z = a without normalisation)
//	h'  = φ(z)
//
// An Affine is not safe for concurrent use with SetNormOptions or with the
// passes of its Network, which rewrite its buffers and record.
type Affine struct {
	w   *mat.Dense
	b   *mat.VecDense
	act Activation
	rec secondorder.Layer

	in   *mat.Dense // raw input h: the network's input copy or the previous layer's h
	a    *mat.Dense // pre-activations of the last forward pass, n × n_out
	z    *mat.Dense // activation inputs: a itself without normalisation
	h    *mat.Dense // outputs φ(z), n × n_out; the next layer's raw input
	back *mat.Dense // backing store of rec.Back

	// grad, gradW and gradB back the record's Grad, GradW and GradB, which
	// point to them only between a Backward and the next Forward: a Step
	// after a Forward without Backward finds no stale gradients.
	grad  *mat.Dense
	gradW *mat.Dense
	gradB *mat.VecDense

	norm *normState // nil without normalisation
	wh   *whitening // nil without whitening
}

// NewAffine returns an affine layer with n_in inputs, n_out outputs and
// activation act, with zero weights and biases. Its record has W and B set;
// a Network's Forward sets Input, its Backward sets Grad, GradW and GradB
// (and the next Forward unsets them).
func NewAffine(in, out int, act Activation) *Affine {
	if in <= 0 || out <= 0 {
		panic(fmt.Sprintf("nn: NewAffine: sizes %d→%d must be positive", in, out))
	}
	if act == nil {
		panic("nn: NewAffine: nil activation")
	}
	l := &Affine{
		w:     mat.NewDense(out, in, nil),
		b:     mat.NewVecDense(out, nil),
		act:   act,
		a:     &mat.Dense{},
		h:     &mat.Dense{},
		back:  &mat.Dense{},
		grad:  &mat.Dense{},
		gradW: mat.NewDense(out, in, nil),
		gradB: mat.NewVecDense(out, nil),
	}
	l.z = l.a
	l.rec = secondorder.Layer{W: l.w, B: l.b}
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
// owned by the layer, with H the record's Input (the whitened input for a
// whitened layer). For a normalised layer this is the input of the
// normalisation, not of the activation (see ActInputs).
func (l *Affine) PreActivations() *mat.Dense { return l.a }

// ActInputs returns the inputs Z of the activation in the last forward pass
// (n × n_out), owned by the layer: the normalised pre-activations
// z = BN(a) for a normalised layer, the very matrix PreActivations returns
// otherwise.
func (l *Affine) ActInputs() *mat.Dense { return l.z }

// Outputs returns φ(Z) of the last forward pass (n × n_out), owned by the
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
	out, in := l.w.Dims()
	resize(l.a, n, out)
	resize(l.h, n, out)
	resize(l.grad, n, out)
	if l.norm != nil {
		resize(l.z, n, out)
		if l.norm.kind == BatchNorm {
			resize(l.norm.xhat, n, out)
		}
	}
	if l.wh != nil {
		resize(l.wh.he, n, in)
	}
}

// forward computes the whitened input (whitened layers), A = H Wᵀ + 1 bᵀ,
// the normalisation Z = BN(A) (normalised layers; with the batch's
// statistics when batch is set, updating the running averages when update
// is set too) and φ(Z).
func (l *Affine) forward(batch, update bool) {
	if l.wh != nil {
		l.wh.forward(l.in)
	}
	l.Linear(l.a, l.rec.Input)
	if l.norm != nil {
		l.norm.forward(l.z, l.a, batch, update)
	}
	l.act.Forward(l.h, l.z)
}

// backInput writes into dst (m × n_in) the gradient with respect to the
// layer's raw input h of the rows g (m × n_out) given with respect to a:
// dst = g W, or g V U for a whitened layer (rows Uᵀ Vᵀ g_r, U symmetric).
func (l *Affine) backInput(dst, g *mat.Dense) {
	if l.wh == nil {
		gemm(blas.NoTrans, blas.NoTrans, 1, g, l.w, 0, dst)
		return
	}
	m, _ := g.Dims()
	_, in := l.w.Dims()
	tmp := l.wh.tmp
	resize(tmp, m, in)
	gemm(blas.NoTrans, blas.NoTrans, 1, g, l.w, 0, tmp)
	gemm(blas.NoTrans, blas.NoTrans, 1, tmp, l.wh.u, 0, dst)
}

// paramGrads fills GradW = (1/n) Gradᵀ Input and GradB = (1/n) Σ_i Grad_i
// (thesis §2.1.2).
func (l *Affine) paramGrads() {
	n, _ := l.grad.Dims()
	inv := 1 / float64(n)
	gemm(blas.Trans, blas.NoTrans, inv, l.grad, l.rec.Input, 0, l.gradW)
	gb := l.gradB.RawVector()
	for j := 0; j < gb.N; j++ {
		gb.Data[j*gb.Inc] = 0
	}
	for i := 0; i < n; i++ {
		for j, v := range row(l.grad, i) {
			gb.Data[j*gb.Inc] += v
		}
	}
	for j := 0; j < gb.N; j++ {
		gb.Data[j*gb.Inc] *= inv
	}
}
