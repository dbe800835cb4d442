package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Norm is the normalisation of an affine layer's output a = W h + b before
// its activation (thesis §3.6.2):
//
//	BatchNorm          z = γ ⊙ (a − μ_B) / √(σ²_B + ε) + β   (Ioffe & Szegedy 2015)
//	MeanOnlyBatchNorm  z = a − μ_B + β                        (Salimans & Kingma 2016)
//
// with μ_B and σ²_B the mean and the (biased) variance of each unit over the
// batch in training mode, and running averages of them in evaluation mode
// (see Network.SetTraining). The gain γ (initially 1) and shift β (initially
// 0) are trained: they are the layer record's Extra parameters "gamma" and
// "beta" (mean-only: "beta" alone), with their gradients of the risk
// averaged over the batch like GradB,
//
//	∂R/∂γ = (1/n) Σ_i ∇_{z_i} l ⊙ x̂_i,   ∂R/∂β = (1/n) Σ_i ∇_{z_i} l,
//
// x̂_i = (a_i − μ_B)/√(σ²_B + ε). The record's Grad stays ∇_a l, the gradient
// with respect to the affine output through the normalisation's full
// backward pass, which couples the examples of the batch: with
// g_i = ∇_{z_i} l and s = 1/√(σ²_B + ε),
//
//	BatchNorm          Grad_i = γ ⊙ s ⊙ (g_i − mean_k g_k − x̂_i ⊙ mean_k(g_k ⊙ x̂_k))
//	MeanOnlyBatchNorm  Grad_i = g_i − mean_k g_k
//
// so that GradW = (1/n) Gradᵀ Input is still ∇_W R. In training mode
// Σ_i Grad_i = 0: the bias b is redundant under batch normalisation (β takes
// its role) and its gradient GradB is zero up to rounding; it is kept so
// that the record has the usual shape, and optimizers leave it (nearly)
// unchanged. In evaluation mode the normalisation is a fixed per-unit affine
// map and Grad_i = γ ⊙ s ⊙ g_i (mean-only: g_i).
//
// Values of Norm are safe for concurrent use.
type Norm int

const (
	// NoNorm is a plain affine layer, z = a.
	NoNorm Norm = iota
	// BatchNorm is batch normalisation (Ioffe & Szegedy 2015).
	BatchNorm
	// MeanOnlyBatchNorm is mean-only batch normalisation (Salimans &
	// Kingma 2016), which subtracts the batch mean and adds β.
	MeanOnlyBatchNorm
)

// DefaultNormEps is the ε of batch normalisation when none is set, as in
// Ioffe & Szegedy (2015) and PyTorch.
const DefaultNormEps = 1e-5

// DefaultNormMomentum is the weight m of the current batch in the running
// averages of batch normalisation when none is set, as in PyTorch:
//
//	μ_run ← (1−m) μ_run + m μ_B,   σ²_run ← (1−m) σ²_run + m σ²_B n/(n−1),
//
// the variance entering the running average unbiased (n examples).
const DefaultNormMomentum = 0.1

// String returns "none", "batch" or "mean-only".
func (k Norm) String() string {
	switch k {
	case NoNorm:
		return "none"
	case BatchNorm:
		return "batch"
	case MeanOnlyBatchNorm:
		return "mean-only"
	}
	return fmt.Sprintf("Norm(%d)", int(k))
}

func (k Norm) valid() bool { return k == NoNorm || k == BatchNorm || k == MeanOnlyBatchNorm }

// normState is the normalisation of one layer.
type normState struct {
	kind          Norm
	eps, momentum float64

	gamma, beta         *mat.VecDense // γ (BatchNorm only) and β
	gradGamma, gradBeta *mat.VecDense
	runMean, runVar     *mat.VecDense // runVar: BatchNorm only

	batch  bool       // whether the last forward pass used the batch's statistics
	mean   []float64  // mean used by the last forward pass
	invStd []float64  // 1/√(σ² + ε) used by the last forward pass (BatchNorm)
	xhat   *mat.Dense // (a − mean)·invStd of the last forward pass (BatchNorm)
	sg     []float64  // column sums of the backward pass
	sgx    []float64
}

func newNormState(kind Norm, out int) *normState {
	s := &normState{
		kind:     kind,
		eps:      DefaultNormEps,
		momentum: DefaultNormMomentum,
		beta:     mat.NewVecDense(out, nil),
		gradBeta: mat.NewVecDense(out, nil),
		runMean:  mat.NewVecDense(out, nil),
		mean:     make([]float64, out),
		sg:       make([]float64, out),
	}
	if kind == BatchNorm {
		s.gamma = mat.NewVecDense(out, nil)
		s.gradGamma = mat.NewVecDense(out, nil)
		s.runVar = mat.NewVecDense(out, nil)
		s.invStd = make([]float64, out)
		s.sgx = make([]float64, out)
		s.xhat = &mat.Dense{}
	}
	s.reset()
	return s
}

// reset sets γ = 1, β = 0 and the running statistics to mean 0, variance 1.
func (s *normState) reset() {
	s.beta.Zero()
	s.runMean.Zero()
	if s.kind == BatchNorm {
		for j := 0; j < s.gamma.Len(); j++ {
			s.gamma.SetVec(j, 1)
			s.runVar.SetVec(j, 1)
		}
	}
}

// forward writes z = BN(a).
func (s *normState) forward(z, a *mat.Dense, batch, update bool) {
	n, out := a.Dims()
	s.batch = batch
	mean := s.mean
	beta := s.beta.RawVector().Data
	if batch {
		clear(mean)
		for i := 0; i < n; i++ {
			for j, v := range row(a, i)[:out] {
				mean[j] += v
			}
		}
		inv := 1 / float64(n)
		for j := range mean {
			mean[j] *= inv
		}
		if s.kind == BatchNorm {
			vr := s.invStd
			clear(vr)
			for i := 0; i < n; i++ {
				for j, v := range row(a, i)[:out] {
					d := v - mean[j]
					vr[j] += d * d
				}
			}
			for j := range vr {
				vr[j] *= inv // biased variance σ²_B
			}
			if update {
				m := s.momentum
				rv := s.runVar.RawVector().Data
				unb := float64(n) / float64(n-1)
				for j, v := range vr {
					rv[j] = (1-m)*rv[j] + m*v*unb
				}
			}
			for j, v := range vr {
				vr[j] = 1 / math.Sqrt(v+s.eps)
			}
		}
		if update {
			m := s.momentum
			rm := s.runMean.RawVector().Data
			for j, v := range mean {
				rm[j] = (1-m)*rm[j] + m*v
			}
		}
	} else {
		copy(mean, s.runMean.RawVector().Data)
		if s.kind == BatchNorm {
			for j, v := range s.runVar.RawVector().Data {
				s.invStd[j] = 1 / math.Sqrt(v+s.eps)
			}
		}
	}
	if s.kind == MeanOnlyBatchNorm {
		for i := 0; i < n; i++ {
			zr := row(z, i)[:out]
			for j, v := range row(a, i)[:out] {
				zr[j] = v - mean[j] + beta[j]
			}
		}
		return
	}
	gamma := s.gamma.RawVector().Data
	for i := 0; i < n; i++ {
		zr, xr := row(z, i)[:out], row(s.xhat, i)[:out]
		for j, v := range row(a, i)[:out] {
			x := (v - mean[j]) * s.invStd[j]
			xr[j] = x
			zr[j] = gamma[j]*x + beta[j]
		}
	}
}

// backward turns g (n × n_out) from ∇_z l into ∇_a l in place and fills
// the gradients of γ and β (see Norm).
func (s *normState) backward(g *mat.Dense) {
	n, out := g.Dims()
	inv := 1 / float64(n)
	sg := s.sg
	clear(sg)
	if s.kind == MeanOnlyBatchNorm {
		for i := 0; i < n; i++ {
			for j, v := range row(g, i)[:out] {
				sg[j] += v
			}
		}
		gb := s.gradBeta.RawVector().Data
		for j := range sg {
			sg[j] *= inv
			gb[j] = sg[j]
		}
		if s.batch {
			for i := 0; i < n; i++ {
				gr := row(g, i)[:out]
				for j := range gr {
					gr[j] -= sg[j]
				}
			}
		}
		return
	}
	sgx := s.sgx
	clear(sgx)
	for i := 0; i < n; i++ {
		xr := row(s.xhat, i)[:out]
		for j, v := range row(g, i)[:out] {
			sg[j] += v
			sgx[j] += v * xr[j]
		}
	}
	gb, gg := s.gradBeta.RawVector().Data, s.gradGamma.RawVector().Data
	for j := range sg {
		sg[j] *= inv
		sgx[j] *= inv
		gb[j] = sg[j]
		gg[j] = sgx[j]
	}
	gamma := s.gamma.RawVector().Data
	if !s.batch {
		s.scaleRows(g)
		return
	}
	for i := 0; i < n; i++ {
		gr, xr := row(g, i)[:out], row(s.xhat, i)[:out]
		for j, v := range gr {
			gr[j] = gamma[j] * s.invStd[j] * (v - sg[j] - xr[j]*sgx[j])
		}
	}
}

// scaleRows multiplies the rows of v (m × n_out) by the jacobian of the
// normalisation with fixed statistics, diag(γ ⊙ s) (identity for mean-only).
func (s *normState) scaleRows(v *mat.Dense) {
	if s.kind != BatchNorm {
		return
	}
	m, out := v.Dims()
	gamma := s.gamma.RawVector().Data
	for i := 0; i < m; i++ {
		vr := row(v, i)[:out]
		for j := range vr {
			vr[j] *= gamma[j] * s.invStd[j]
		}
	}
}

// SetNorm sets the normalisation of layer l (see Norm), with γ = 1, β = 0,
// running mean 0 and running variance 1, ε = DefaultNormEps and momentum
// DefaultNormMomentum (see SetNormOptions). The layer's record gets the
// Extra parameters "gamma" and "beta" (BatchNorm) or "beta"
// (MeanOnlyBatchNorm), or none (NoNorm). Setting a normalisation changes
// the function the network computes; b stays but is redundant (see Norm).
// It invalidates the results of the last Forward.
func (net *Network) SetNorm(l int, kind Norm) {
	if l < 0 || l >= len(net.layers) {
		panic(fmt.Sprintf("nn: SetNorm: layer %d out of range [0,%d)", l, len(net.layers)))
	}
	if !kind.valid() {
		panic(fmt.Sprintf("nn: SetNorm: unknown normalisation %v", kind))
	}
	ly := net.layers[l]
	out, _ := ly.w.Dims()
	if kind == NoNorm {
		ly.norm = nil
		ly.z = ly.a
		ly.rec.Extra = nil
	} else {
		ly.norm = newNormState(kind, out)
		ly.z = &mat.Dense{}
		if kind == BatchNorm {
			ly.rec.Extra = []secondorder.ExtraParam{
				{Name: "gamma", Value: ly.norm.gamma, Grad: ly.norm.gradGamma},
				{Name: "beta", Value: ly.norm.beta, Grad: ly.norm.gradBeta},
			}
		} else {
			ly.rec.Extra = []secondorder.ExtraParam{{Name: "beta", Value: ly.norm.beta, Grad: ly.norm.gradBeta}}
		}
	}
	net.invalidate()
}

// SetNormOptions sets the ε and the running-average momentum m of the
// layer's normalisation (see DefaultNormMomentum); zero means the default.
// ε must be positive for BatchNorm and is unused by MeanOnlyBatchNorm; m
// must be in (0, 1], m = 1 keeping the statistics of the last batch only.
// It panics if the layer has no normalisation.
func (l *Affine) SetNormOptions(eps, momentum float64) {
	if l.norm == nil {
		panic("nn: SetNormOptions: layer has no normalisation")
	}
	if eps == 0 {
		eps = DefaultNormEps
	}
	if momentum == 0 {
		momentum = DefaultNormMomentum
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		panic(fmt.Sprintf("nn: SetNormOptions: ε = %v must be positive", eps))
	}
	if !(momentum > 0 && momentum <= 1) {
		panic(fmt.Sprintf("nn: SetNormOptions: momentum %v outside (0, 1]", momentum))
	}
	l.norm.eps, l.norm.momentum = eps, momentum
}

// NormOptions returns the ε and the momentum of the layer's normalisation
// (zeros without normalisation).
func (l *Affine) NormOptions() (eps, momentum float64) {
	if l.norm == nil {
		return 0, 0
	}
	return l.norm.eps, l.norm.momentum
}

// Norm returns the layer's normalisation.
func (l *Affine) Norm() Norm {
	if l.norm == nil {
		return NoNorm
	}
	return l.norm.kind
}

// Gamma returns the gain γ of a BatchNorm layer (shared with the record's
// Extra), nil otherwise.
func (l *Affine) Gamma() *mat.VecDense {
	if l.norm == nil {
		return nil
	}
	return l.norm.gamma
}

// Beta returns the shift β of a normalised layer (shared with the record's
// Extra), nil otherwise.
func (l *Affine) Beta() *mat.VecDense {
	if l.norm == nil {
		return nil
	}
	return l.norm.beta
}

// RunningMean returns the running average of the batch means of a
// normalised layer, used in evaluation mode; nil otherwise. It may be
// modified.
func (l *Affine) RunningMean() *mat.VecDense {
	if l.norm == nil {
		return nil
	}
	return l.norm.runMean
}

// RunningVar returns the running average of the (unbiased) batch variances
// of a BatchNorm layer, used in evaluation mode; nil otherwise. It may be
// modified.
func (l *Affine) RunningVar() *mat.VecDense {
	if l.norm == nil {
		return nil
	}
	return l.norm.runVar
}

// SetTraining switches the network between training mode (true, the
// default) and evaluation mode. In training mode, normalised layers use the
// statistics of the batch, and Forward updates their running averages (so
// does Risk, which calls Forward); in evaluation mode they use the running
// averages, which Forward leaves unchanged, and every example is processed
// independently of the others. Whitened layers behave the same in both
// modes.
func (net *Network) SetTraining(on bool) { net.training = on }

// Training reports whether the network is in training mode.
func (net *Network) Training() bool { return net.training }

// NewNormalized returns New(sizes, acts) with normalisation norm on every
// layer but the output layer, whose outputs are the network's (see SetNorm
// for the initial values).
func NewNormalized(sizes []int, acts []Activation, norm Norm) *Network {
	net := New(sizes, acts)
	for l := 0; l < len(net.layers)-1; l++ {
		net.SetNorm(l, norm)
	}
	return net
}

// NewAutoencoderNorm returns NewAutoencoder(sizes) with normalisation norm
// on every hidden layer, including the linear code layer, and not on the
// output layer, whose sigmoid outputs are the reconstructions: a
// normalised output would tie the reconstruction of an image to the other
// images of its batch.
func NewAutoencoderNorm(sizes []int, norm Norm) *Network {
	net := NewAutoencoder(sizes)
	for l := 0; l < len(net.layers)-1; l++ {
		net.SetNorm(l, norm)
	}
	return net
}

// batchCoupled reports whether the last forward pass used the statistics
// of the batch in some layer, which couples the examples.
func (net *Network) batchCoupled() bool {
	for _, ly := range net.layers {
		if ly.norm != nil && ly.norm.batch {
			return true
		}
	}
	return false
}

// checkPerExample panics if the last forward pass coupled the examples.
func (net *Network) checkPerExample(op string) {
	if net.batchCoupled() {
		panic(fmt.Sprintf("nn: %s: batch normalisation in training mode couples the examples of a batch, "+
			"so per-example curvature vectors are not defined; call SetTraining(false) and Forward again "+
			"to use the running statistics", op))
	}
}
