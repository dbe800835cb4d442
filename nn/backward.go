package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Backward backpropagates the loss of the last Forward with targets Y
// (n × sizes[L]) (thesis §2.1.2). For every layer l it fills the record's
//
//	Grad   n × n_out   row i = ∇_{a_l} l(f(x_i), y_i), not divided by n
//	GradW  n_out × n_in  (1/n) Gradᵀ Input
//	GradB  n_out         (1/n) Σ_i Grad_i
//	Risk                 (1/n) Σ_i l(f(x_i), y_i), the risk of the batch
//
// starting from Grad_L = loss.GradA and using
// Grad_{l−1} = φ'_{l−1} ⊙ (Grad_l W_l) (J_φᵀ (Grad_l W_l) in general;
// Grad_l V_l U_l for a whitened layer l, see SetWhitened). Normalised
// layers turn the gradient with respect to their activation's input into
// Grad = ∇_a l through the normalisation's backward pass (coupling the
// examples in training mode) and fill the gradients of their Extra
// parameters γ and β (see Norm). It panics if the loss does not accept the
// output activation.
//
// Cost: two gemms per layer (three for whitened layers). At a fixed batch
// size it does not allocate when Y is a *mat.Dense.
func (net *Network) Backward(loss Loss, Y mat.Matrix) {
	net.checkForward("Backward")
	net.checkLoss("Backward", loss)
	y := net.targets("Backward", Y)
	last := net.layers[len(net.layers)-1]
	loss.GradA(last.grad, net.Output(), y)
	risk := loss.Value(net.Output(), y)
	if risk == 0 {
		risk = math.SmallestNonzeroFloat64 // zero Risk means unknown
	}
	for l := len(net.layers) - 1; l >= 0; l-- {
		ly := net.layers[l]
		if ly.norm != nil {
			ly.norm.backward(ly.grad)
		}
		ly.paramGrads()
		ly.rec.Grad, ly.rec.GradW, ly.rec.GradB = ly.grad, ly.gradW, ly.gradB
		ly.rec.Risk = risk
		if l > 0 {
			prev := net.layers[l-1]
			ly.backInput(prev.grad, ly.grad)
			prev.act.Backward(prev.grad, prev.grad, prev.z, prev.h, nil)
		}
	}
}

// BackwardVectors backpropagates m vectors given in the space of the output
// layer's pre-activation a_L to the pre-activations of every layer. Row r of
// V (m × sizes[L]) belongs to example idx[r] (to example r when idx is nil,
// which requires m = n). Afterwards record l's Back (m × n_out_l) holds in
// row r
//
//	g_r^l = J_{a_l → a_L}(x_{idx[r]})ᵀ v_r,
//
// the transposed jacobian of the output pre-activation with respect to the
// layer's pre-activation, at example idx[r], applied to v_r. With the rows
// of V the rows of square-root factors S_i of D (S_iᵀ S_i = D_i), the rows of
// Back are those of J_{a_l}ᵀ D^{1/2} and Σ_r g_r g_rᵀ / n is the output-side
// factor E[J_{a_l}ᵀ D J_{a_l}] of the Gauss–Newton or Fisher block (thesis
// §3.1.4, §3.2.2). BackScale is set to 1/n, with n the batch size, so that
// BackScale · Backᵀ Back is that expectation when there is one set of rows
// per example; callers who tie several samples to an example set BackScale
// themselves.
//
// Grad, GradW and GradB are not touched. V may be the output layer's Back.
// Cost: one m × n_out × n_in gemm per layer (plus m × n_in × n_in for a
// whitened layer). At a fixed m it does not allocate.
//
// With normalised layers, a_l is the affine output before the
// normalisation and a_L the logits (the output activation's inputs, see
// Output). The vector backward passes (this one, BackwardGN, BackwardFisher
// and BackwardMC) need per-example jacobians, which batch normalisation in
// training mode does not have: they panic when the last Forward ran a
// normalised layer in training mode. In evaluation mode (SetTraining(false)
// before Forward) the normalisation is a fixed affine map per unit and the
// passes are exact.
func (net *Network) BackwardVectors(V mat.Matrix, idx []int) {
	net.checkForward("BackwardVectors")
	net.checkPerExample("BackwardVectors")
	k := net.sizes[len(net.sizes)-1]
	m, c := V.Dims()
	if c != k {
		panic(fmt.Sprintf("nn: BackwardVectors: vectors are %d×%d, want m×%d", m, c, k))
	}
	net.checkIndex("BackwardVectors", m, idx)
	last := net.layers[len(net.layers)-1]
	if V != mat.Matrix(last.back) {
		resize(last.back, m, k)
		last.back.Copy(V)
	}
	net.backVectors(idx)
}

func (net *Network) checkIndex(op string, m int, idx []int) {
	if idx == nil {
		if m != net.n {
			panic(fmt.Sprintf("nn: %s: %d vectors and no index, want %d (one per example)", op, m, net.n))
		}
		return
	}
	if len(idx) != m {
		panic(fmt.Sprintf("nn: %s: index has length %d, want %d", op, len(idx), m))
	}
	for r, i := range idx {
		if i < 0 || i >= net.n {
			panic(fmt.Sprintf("nn: %s: idx[%d] = %d out of range [0,%d)", op, r, i, net.n))
		}
	}
}

// backVectors backpropagates the rows of the output layer's back buffer.
func (net *Network) backVectors(idx []int) {
	scale := 1 / float64(net.n)
	L := len(net.layers)
	m, _ := net.layers[L-1].back.Dims()
	for l := L - 1; l >= 0; l-- {
		ly := net.layers[l]
		if ly.norm != nil {
			ly.norm.scaleRows(ly.back)
		}
		ly.rec.Back = ly.back
		ly.rec.BackScale = scale
		ly.rec.BackExamples = idx
		if l > 0 {
			prev := net.layers[l-1]
			out, _ := prev.w.Dims()
			resize(prev.back, m, out)
			ly.backInput(prev.back, ly.back)
			prev.act.Backward(prev.back, prev.back, prev.z, prev.h, idx)
		}
	}
}

// BackwardGN fills every record's Back with the exact Gauss–Newton vectors
// of the last Forward with targets Y: the k rows of S_i (SqrtD with
// GaussNewton and split s, S_iᵀ S_i = D_a of table 3.I at the split) for
// every example i, backpropagated by BackwardVectors, so that at layer l
//
//	BackScale · Backᵀ Back = (1/n) Σ_i J_{a_l}ᵀ D_a J_{a_l},
//
// the output-side factor of the layer's Gauss–Newton block. Back has n·k
// rows, rows i·k … i·k+k−1 belonging to example i.
func (net *Network) BackwardGN(loss Loss, Y mat.Matrix, s Split) {
	net.checkForward("BackwardGN")
	net.checkPerExample("BackwardGN")
	net.checkLoss("BackwardGN", loss)
	net.backwardExact(loss, GaussNewton, s, net.targets("BackwardGN", Y))
}

// BackwardFisher is BackwardGN for the Fisher matrix: D_a is the D of table
// 3.II at the logits, which depends neither on the targets nor on the split.
func (net *Network) BackwardFisher(loss Loss) {
	net.checkForward("BackwardFisher")
	net.checkPerExample("BackwardFisher")
	net.checkLoss("BackwardFisher", loss)
	net.backwardExact(loss, Fisher, SplitLogits, nil)
}

func (net *Network) backwardExact(loss Loss, c Curvature, s Split, y *mat.Dense) {
	k := net.sizes[len(net.sizes)-1]
	m := net.n * k
	last := net.layers[len(net.layers)-1]
	resize(last.back, m, k)
	if y == nil {
		// Fisher D does not depend on the targets; give the loss the outputs
		// as well-shaped placeholder targets.
		y = last.h
	}
	loss.SqrtD(last.back, c, s, net.Output(), y)
	if cap(net.idx) < m {
		net.idx = make([]int, m)
	}
	net.idx = net.idx[:m]
	for r := range net.idx {
		net.idx[r] = r / k
	}
	net.backVectors(net.idx)
}

// BackwardMC fills every record's Back with the Monte-Carlo Fisher vectors
// of the last Forward (Martens & Grosse 2015): for every example i a
// target ỹ_i is drawn from the model's predictive distribution
// (loss.Sample) and the gradient ∇_a l(f_i, ỹ_i) with respect to the output
// pre-activation is backpropagated by BackwardVectors, so that
// BackScale · Backᵀ Back is an unbiased estimate of the output-side factor
// of the Fisher block, (1/n) Σ_i J_{a_l}ᵀ D_a J_{a_l}. Back has n rows.
// At a fixed batch size it does not allocate.
func (net *Network) BackwardMC(loss Loss, rng *rand.Rand) {
	net.checkForward("BackwardMC")
	net.checkPerExample("BackwardMC")
	net.checkLoss("BackwardMC", loss)
	if rng == nil {
		panic("nn: BackwardMC: nil rng; the sampled targets need a source of randomness")
	}
	k := net.sizes[len(net.sizes)-1]
	resize(net.ys, net.n, k)
	o := net.Output()
	loss.Sample(net.ys, o, rng)
	last := net.layers[len(net.layers)-1]
	resize(last.back, net.n, k)
	loss.GradA(last.back, o, net.ys)
	net.backVectors(nil)
}

// SampledTargets returns the targets drawn by the last BackwardMC
// (n × sizes[L]), owned by the network.
func (net *Network) SampledTargets() *mat.Dense { return net.ys }
