package secondorder

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Layer is the per-layer record of one affine layer a = W h + b for one
// minibatch: the currency between a network (package nn, or any other code)
// and the curvature and optimizer packages. With n examples in the batch:
//
//	W      n_out × n_in   weights, updated in place by optimizers
//	B      n_out          biases, updated in place by optimizers
//	Input  n × n_in       h_i, the activation that entered the layer (row i = example i)
//	Grad   n × n_out      ∇_{a_i} l, the per-example gradient of the loss w.r.t. the
//	                      pre-activation (not divided by n)
//	Back   m × n_out      optional backpropagated curvature vectors g_r whose outer
//	                      products build the output-side factor (rows of J_aᵀ D^{1/2}
//	                      for exact GN/Fisher, or one sampled-target gradient per
//	                      example for Monte-Carlo Fisher); BackScale weights them,
//	                      BackExamples ties each row to its example
//	GradW  n_out × n_in   ∇_W R = (1/n) Gradᵀ Input (thesis §2.1.2), filled by the producer
//	GradB  n_out          ∇_b R = (1/n) Σ_i Grad_i
//
// The parameter vector of the layer is θ = [vec(W); b] with vec stacking
// columns, so that J_θ^a = (hᵀ 1) ⊗ I (thesis eq. 3.3.1).
//
// A Layer is safe for concurrent use by multiple goroutines as long as none
// modifies it or its matrices (AddParams and ComputeParamGrads do).
type Layer struct {
	W     *mat.Dense
	B     *mat.VecDense
	Input *mat.Dense
	Grad  *mat.Dense
	Back  *mat.Dense
	// BackScale multiplies Σ_k g_k g_kᵀ to give the output-side second moment
	// E[g gᵀ]; zero means 1/n with n the number of rows of Input.
	BackScale float64
	// BackExamples gives the example of each row of Back: row r belongs to
	// example BackExamples[r], a row of Input. Nil means the default layout
	// (see BackExample). The slice is owned by the producer of the record.
	BackExamples []int
	GradW        *mat.Dense
	GradB        *mat.VecDense
	// Extra holds the layer's parameters other than W and B, such as the
	// gain γ and shift β of batch normalisation (thesis §3.6.2), each with
	// its gradient of the risk. First-order optimizers update them like B;
	// curvature-based optimizers, whose curvature covers only W and B, give
	// them plain gradient steps and say so.
	Extra []ExtraParam
	// Risk is the risk R = (1/n) Σ_i l(f(x_i), y_i) of the minibatch these
	// records come from, at the parameters they were computed with, when the
	// producer knows it; zero means unknown. It is the same on every layer
	// of a network. Package nn's Backward sets it. Scale-free step rules
	// read it: optim's norm constraint bounds an update's predicted change
	// of the loss relative to R.
	Risk float64
}

// ExtraParam is a parameter vector outside the affine map, with the gradient of
// the risk with respect to it, filled by the producer of the record. An
// ExtraParam is safe for concurrent use by multiple goroutines as long as
// none modifies it or its vectors.
type ExtraParam struct {
	Name  string
	Value *mat.VecDense
	Grad  *mat.VecDense
}

// Dims returns the layer's output and input sizes, n_out and n_in.
func (l *Layer) Dims() (out, in int) { return l.W.Dims() }

// Check panics with a message naming the first field whose shape disagrees
// with W. It is meant for the entry points of optimizers and curvature code.
func (l *Layer) Check() {
	if l.W == nil {
		panic("secondorder: Layer.W is nil")
	}
	out, in := l.W.Dims()
	if l.B != nil && l.B.Len() != out {
		panic(fmt.Sprintf("secondorder: Layer.B has length %d, want n_out=%d", l.B.Len(), out))
	}
	n := -1
	if l.Input != nil {
		r, c := l.Input.Dims()
		if c != in {
			panic(fmt.Sprintf("secondorder: Layer.Input is %d×%d, want n×%d", r, c, in))
		}
		n = r
	}
	if l.Grad != nil {
		r, c := l.Grad.Dims()
		if c != out || (n >= 0 && r != n) {
			panic(fmt.Sprintf("secondorder: Layer.Grad is %d×%d, want %d×%d", r, c, n, out))
		}
	}
	if l.Back != nil {
		m, c := l.Back.Dims()
		if c != out {
			panic(fmt.Sprintf("secondorder: Layer.Back has %d columns, want n_out=%d", c, out))
		}
		l.checkBackExamples(m, n)
	}
	if l.GradW != nil {
		if r, c := l.GradW.Dims(); r != out || c != in {
			panic(fmt.Sprintf("secondorder: Layer.GradW is %d×%d, want %d×%d", r, c, out, in))
		}
	}
	if l.GradB != nil && l.GradB.Len() != out {
		panic(fmt.Sprintf("secondorder: Layer.GradB has length %d, want %d", l.GradB.Len(), out))
	}
	for _, p := range l.Extra {
		if p.Value == nil || p.Grad == nil || p.Value.Len() != p.Grad.Len() {
			panic(fmt.Sprintf("secondorder: Layer.Extra %q needs Value and Grad of equal length", p.Name))
		}
	}
}

// ComputeParamGrads fills GradW and GradB from Input and Grad,
//
//	∇_W R = (1/n) Gradᵀ Input,   ∇_b R = (1/n) Σ_i Grad_i   (thesis §2.1.2),
//
// allocating them when nil. It is for producers other than package nn, which
// fills them itself during its backward pass.
func (l *Layer) ComputeParamGrads() {
	l.Check()
	if l.Input == nil || l.Grad == nil {
		panic("secondorder: ComputeParamGrads needs Input and Grad")
	}
	out, in := l.W.Dims()
	n, _ := l.Input.Dims()
	if l.GradW == nil {
		l.GradW = mat.NewDense(out, in, nil)
	}
	if l.GradB == nil {
		l.GradB = mat.NewVecDense(out, nil)
	}
	l.GradW.Mul(l.Grad.T(), l.Input)
	l.GradW.Scale(1/float64(n), l.GradW)
	for j := 0; j < out; j++ {
		s := 0.0
		for i := 0; i < n; i++ {
			s += l.Grad.At(i, j)
		}
		l.GradB.SetVec(j, s/float64(n))
	}
}
