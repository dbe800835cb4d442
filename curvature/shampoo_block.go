package curvature

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
)

// GraftEpsilon is the ε of the RMSProp direction G/(√v + ε) whose norm
// ShampooBlock grafts onto its own.
const GraftEpsilon = 1e-8

// ShampooBlock is the Shampoo preconditioner of one affine layer (Gupta,
// Koren & Singer 2018; the moving averages and grafting of Anil et al.
// 2020), from the gradient matrices G = [∇W ∇b] alone:
//
//	U = (L + ε_L I)^{−1/4} G (R + ε_R I)^{−1/4},   L = E[G Gᵀ],   R = E[Gᵀ G],
//
// with ε_L = λ·tr(L)/n_out and ε_R = λ·tr(R)/(n_in+1) (λ the damping of the
// last Refresh, relative to each factor's mean eigenvalue; λ itself when a
// trace is zero). Refresh computes the inverse fourth roots from the
// eigendecompositions L = Q_L Λ_L Q_Lᵀ, R = Q_R Λ_R Q_Rᵀ,
//
//	U = Q_L ((Q_Lᵀ G Q_R) ./ ((λ_L + ε_L)^{1/4} (λ_R + ε_R)^{1/4 ᵀ})) Q_Rᵀ,
//
// (kron.EigenKron.SolveScaled). Grafting (Agarwal et al. 2020) takes the
// direction of Shampoo and the step size of RMSProp: U is rescaled to the
// Frobenius norm of G/(√v + GraftEpsilon), v = E[G∘G] the moving average of
// the squared gradients, so that a learning rate tuned for RMSProp carries
// over. Update folds G Gᵀ, Gᵀ G and G∘G into moving averages
// (MovingAverage, warm-started, Decay).
//
// Shampoo's preconditioner approximates (E[vec G vec Gᵀ])^{−1/2}, the
// full-matrix AdaGrad's, rather than the inverse of a curvature matrix:
// Mul applies its inverse without grafting, Q_L ((Q_Lᵀ V Q_R) ∘ S) Q_Rᵀ
// with S the fourth roots above (V itself before the first Refresh), and
// Scale is 1, the damping being relative to each factor.
//
// Cost per layer, with n_A = n_in+1 and n_G = n_out: Update two syrk of the
// gradient, n_G n_A (n_A + n_G) flops; Refresh two symmetric
// eigendecompositions and the explicit roots P_L, P_R, 2(n_A³ + n_G³);
// Precondition two products, P_L G P_R, 2 n_G n_A (n_A + n_G). Memory: the
// averages of L, R (with staging copies) and v, three bases and their
// roots.
// It implements Staged and, for checkpoints that resume exactly,
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler (kind
// "curvature.ShampooBlock").
//
// The zero value is ready to use (Decay DefaultDecay); its shapes are fixed
// by the first Update. It reads the records' GradW and GradB only. It is
// not safe for concurrent use.
type ShampooBlock struct {
	// Decay is the ε of the moving averages of L, R and v, in [0, 1). Zero
	// means DefaultDecay (0.95).
	Decay float64

	blockBase
	gf    gradFactors
	cur   int
	roots [3]mat.Dense // S of each basis: (λ_L + ε_L)^{1/4} (λ_R + ε_R)^{1/4 ᵀ}
	v     MovingAverage
	sq    mat.VecDense
	ra    []float64 // buffers of the roots of R and L
	rg    []float64
	pl    [3]mat.Dense // P_L = (L + ε_L I)^{−1/4} of each basis
	pr    [3]mat.Dense // P_R
	work  mat.Dense
}

// Update folds the statistics of the record's gradient [∇W ∇b] into the
// averages. It panics, with a message prefixed "curvature: ", when the
// record lacks GradW or GradB or its shape differs from that of the first
// Update.
func (b *ShampooBlock) Update(l *secondorder.Layer) {
	const op = "ShampooBlock.Update"
	checkLayer(l, op, false, false, false)
	if l.GradW == nil || l.GradB == nil {
		panic("curvature: " + op + ": layer has no GradW or GradB")
	}
	out, in := b.dims.fix(l, op)
	b.gf.update(l, b.Decay, out, in)
	if b.sq.IsEmpty() {
		b.sq.ReuseAsVec(out * (in + 1))
	}
	sq := b.sq.RawVector().Data
	g := b.gf.g.RawMatrix()
	for o := 0; o < out; o++ {
		for c, x := range g.Data[o*g.Stride : o*g.Stride+in+1] {
			sq[o*(in+1)+c] = x * x
		}
	}
	b.v.Decay = b.Decay
	b.v.AddVec(&b.sq)
}

// Scale returns 1: Shampoo's damping is relative to each factor.
func (b *ShampooBlock) Scale() float64 { return 1 }

// Refresh eigendecomposes the averages of L and R and computes the inverse
// fourth roots with the damping λ. It returns ErrNoEstimate before the
// first Update, an error wrapping kron's eigendecomposition errors, and one
// wrapping ErrNotPositiveDefinite when a damped factor is singular to
// working precision (λ = 0 with a singular factor); the basis held before
// is then kept.
func (b *ShampooBlock) Refresh(lambda float64) error {
	const op = "ShampooBlock.Refresh"
	checkBlockDamping(lambda, op)
	if b.gf.count() == 0 {
		return ErrNoEstimate
	}
	i := b.spare(b.cur)
	if err := b.gf.factorize(i); err != nil {
		return fmt.Errorf("curvature: %s: %w", op, err)
	}
	if err := b.setRoots(i, lambda); err != nil {
		return fmt.Errorf("curvature: %s: %w", op, err)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// setRoots sets roots[i] = (λ_L + ε_L)^{1/4} (λ_R + ε_R)^{1/4 ᵀ} from the
// eigenvalues of basis i and the damping λ.
func (b *ShampooBlock) setRoots(i int, lambda float64) error {
	la, lg := b.gf.eig[i].Values()
	ra, err := fourthRoots(growFloats(&b.ra, len(la)), la, lambda, "R")
	if err != nil {
		return err
	}
	rg, err := fourthRoots(growFloats(&b.rg, len(lg)), lg, lambda, "L")
	if err != nil {
		return err
	}
	s := &b.roots[i]
	reuseWork(s, len(rg), len(ra))
	raw := s.RawMatrix()
	for o, x := range rg {
		for c, y := range ra {
			raw.Data[o*raw.Stride+c] = x * y
		}
	}
	// The explicit inverse roots P_L = Q_L diag(1/rg) Q_Lᵀ and P_R, so that
	// Precondition is two products, P_L G P_R, instead of four.
	qa, qg := b.gf.eig[i].Bases()
	inverseRoot(&b.pl[i], &b.work, qg, rg)
	inverseRoot(&b.pr[i], &b.work, qa, ra)
	return nil
}

// inverseRoot writes Q diag(1/r) Qᵀ into dst, with work a buffer.
func inverseRoot(dst, work, q *mat.Dense, r []float64) {
	n := len(r)
	reuseWork(work, n, n)
	qr, wr := q.RawMatrix(), work.RawMatrix()
	for i := 0; i < n; i++ {
		for j, v := range qr.Data[i*qr.Stride : i*qr.Stride+n] {
			wr.Data[i*wr.Stride+j] = v / r[j]
		}
	}
	reuseWork(dst, n, n)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, wr, qr, 0, dst.RawMatrix())
}

// fourthRoots writes into dst (λ_i + ε)^{1/4} for the eigenvalues vals of a
// factor, ε = λ·mean(vals) (λ when the mean is zero), and returns it, or an
// error wrapping ErrNotPositiveDefinite when vals + ε is singular to
// working precision.
func fourthRoots(dst, vals []float64, lambda float64, name string) ([]float64, error) {
	mean := 0.0
	for _, v := range vals {
		mean += v
	}
	mean /= float64(len(vals))
	eps := lambda * mean
	if !(mean > 0) {
		eps = lambda
	}
	if ok, low, high := positiveBeyondRounding(vals, eps); !ok {
		return nil, fmt.Errorf("factor %s: eigenvalues from %g to %g with damping %g: %w", name, low, high, eps, ErrNotPositiveDefinite)
	}
	for k, v := range vals {
		dst[k] = math.Sqrt(math.Sqrt(v + eps))
	}
	return dst, nil
}

// Begin marks the current state as the one Rollback returns to (Staged).
func (b *ShampooBlock) Begin() {
	b.begin(b.cur)
	b.gf.begin()
	b.v.Begin()
}

// Rollback returns b to its state at the last Begin.
func (b *ShampooBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	b.gf.rollback()
	b.v.Rollback()
}

// Factors returns the current averages L (n_out²) and R ((n_in+1)²), owned
// by b and valid until the next Update; nil before the first Update.
func (b *ShampooBlock) Factors() (l, r *mat.SymDense) { return b.gf.lAvg.Mean(), b.gf.rAvg.Mean() }

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// Shampoo's direction for the record's gradient, grafted to the norm of
// RMSProp's. It panics before a successful Refresh or for a record of
// another shape.
func (b *ShampooBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	b.startPrecondition(dst, l, "ShampooBlock.Precondition")
	l.ParamGrad(dst)
	graft := 0.0
	v := b.v.MeanVec().RawVector().Data
	raw := dst.RawMatrix()
	for o := 0; o < raw.Rows; o++ {
		for c, x := range raw.Data[o*raw.Stride : o*raw.Stride+raw.Cols] {
			d := x / (math.Sqrt(v[o*raw.Cols+c]) + GraftEpsilon)
			graft += d * d
		}
	}
	// U = P_L G P_R.
	reuseWork(&b.work, raw.Rows, raw.Cols)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, b.pl[b.cur].RawMatrix(), raw, 0, b.work.RawMatrix())
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, b.work.RawMatrix(), b.pr[b.cur].RawMatrix(), 0, raw)
	if n := mat.Norm(dst, 2); n > 0 {
		f := math.Sqrt(graft) / n
		for o := 0; o < raw.Rows; o++ {
			row := raw.Data[o*raw.Stride : o*raw.Stride+raw.Cols]
			for c := range row {
				row[c] *= f
			}
		}
	}
}

// Mul writes dst = Q_L ((Q_Lᵀ V Q_R) ∘ S) Q_Rᵀ for a direction V, the
// inverse of the ungrafted preconditioner, or V before the first Refresh.
// An empty dst is resized; dst may be v.
func (b *ShampooBlock) Mul(dst, v *mat.Dense) {
	b.startMul(dst, v, b.gf.count() > 0, "ShampooBlock.Mul")
	if !b.ready {
		dst.Copy(v)
		return
	}
	b.gf.eig[b.cur].MulScaled(dst, v, &b.roots[b.cur])
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.ShampooBlock": its Decay (DefaultDecay for zero), its
// shape, whether a basis is held and its λ, the averages of L, R and v,
// and the basis held (a nested kron.EigenKron), bit for bit; the roots are
// recomputed from the basis and λ. It returns an error, prefixed
// "curvature: ShampooBlock: ", for a Decay outside [0, 1).
func (b *ShampooBlock) MarshalBinary() ([]byte, error) {
	return marshalGradBlock("ShampooBlock", b.Decay, &b.blockBase, &b.gf, b.cur, &b.v)
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that b continues as the saved
// block bit for bit. The Decay of b must be set first as that of the saved
// block: an error, prefixed "curvature: ShampooBlock: ", names it when it
// differs after defaults. Data that is not a valid checkpoint (truncated,
// altered, of another type, with sizes that disagree with the shape, a
// basis without statistics) gives an error with that prefix wrapping
// ErrCorruptCheckpoint. On any error b is left unchanged.
func (b *ShampooBlock) UnmarshalBinary(data []byte) error {
	base, gf, avgs, err := unmarshalGradBlock(data, "ShampooBlock", b.Decay, []string{"average of G∘G"},
		func(r *state.Reader, base blockBase, gf *gradFactors, avgs []MovingAverage) bool {
			if avgs[0].k != gf.count() || (base.ready && avgs[0].k == 0) {
				r.Fail("%d squared gradients for %d factor updates (ready %t)", avgs[0].k, gf.count(), base.ready)
				return false
			}
			return true
		})
	if err != nil {
		return err
	}
	nb := ShampooBlock{Decay: b.Decay, blockBase: base, gf: gf, v: avgs[0]}
	if nb.ready {
		if err := nb.setRoots(0, nb.lambda); err != nil {
			return fmt.Errorf("curvature: ShampooBlock: basis with damping %g: %v: %w", nb.lambda, err, ErrCorruptCheckpoint)
		}
	}
	*b = nb
	return nil
}
