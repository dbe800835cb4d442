package curvature

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
)

// SOAPBlock is SOAP, "ShampoO with Adam in the Preconditioner's
// eigenbasis" (Vyas et al. 2024), for one affine layer: Adam run in the
// eigenbasis of Shampoo's factors L = E[G Gᵀ] = Q_L Λ_L Q_Lᵀ and
// R = E[Gᵀ G] = Q_R Λ_R Q_Rᵀ (G = [∇W ∇b]),
//
//	G' = Q_Lᵀ G Q_R,   m = E[G'],   v = E[G'∘G'],   U = Q_L (m ./ (√v + λ)) Q_Rᵀ,
//
// with λ Adam's ε (the damping of the last Refresh, absolute). Update folds
// G Gᵀ and Gᵀ G into the averages of L and R and, once a basis is held, G'
// into Adam's moments m and v; all are moving averages with the same Decay
// (the paper's β₁ = β₂ = 0.95), warm-started (MovingAverage: the plain mean
// while 1 − 1/k < Decay), which makes Adam's bias correction unnecessary.
// Refresh eigendecomposes L and R (the paper uses a step of power iteration
// and QR) and carries the moments into the new basis: m exactly,
// m' = Q'ᵀ Q m Qᵀ Q' in matrix form, and v as EKFACBlock carries its scaling,
// (R_L∘R_L) v (R_R∘R_R)ᵀ with R = Q'ᵀ Q, the diagonal of the old second
// moments in the new basis (the paper keeps v, sorted by eigenvalue). Until
// the first Update after the first Refresh the moments are empty and
// Precondition gives a zero direction: as in the paper's implementation,
// the first step only builds the preconditioner.
//
// Precondition builds the direction from the moments, of which the
// record's gradient is the latest (the engine's momentum is then usually
// left at zero). Mul applies Q_L ((Q_Lᵀ V Q_R) ∘ (√v + λ)) Q_Rᵀ, the inverse
// of the preconditioner, or V while the moments are empty; Scale is the
// mean of √v (1 before).
//
// Cost per layer, with n_A = n_in+1 and n_G = n_out: Update two syrk of
// the gradient and a rotation, 3 n_G n_A (n_A + n_G) flops; Refresh two
// symmetric eigendecompositions and the carrying of the moments;
// Precondition a rotation back, 2 n_G n_A (n_A + n_G). It implements Staged
// and, for checkpoints that resume exactly, encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler (kind "curvature.SOAPBlock").
//
// The zero value is ready to use (Decay DefaultDecay); its shapes are fixed
// by the first Update. It reads the records' GradW and GradB only. It is
// not safe for concurrent use.
type SOAPBlock struct {
	// Decay is the ε of the moving averages of L, R, m and v, in [0, 1).
	// Zero means DefaultDecay (0.95).
	Decay float64

	blockBase
	gf             gradFactors
	cur            int
	m, v           MovingAverage // row-major n_out × n_A, in the basis held
	gr, sq         mat.VecDense  // G' and G'∘G' of an update; the carried moments of a Refresh
	ra, rb, w, den mat.Dense
	grm, mm        mat.Dense // views of gr and of m's average
}

// Update folds the statistics of the record's gradient into the averages
// and, once a basis is held, its rotation into Adam's moments. It panics,
// with a message prefixed "curvature: ", when the record lacks GradW or
// GradB or its shape differs from that of the first Update.
func (b *SOAPBlock) Update(l *secondorder.Layer) {
	const op = "SOAPBlock.Update"
	checkLayer(l, op, false, false, false)
	if l.GradW == nil || l.GradB == nil {
		panic("curvature: " + op + ": layer has no GradW or GradB")
	}
	out, in := b.dims.fix(l, op)
	b.gf.update(l, b.Decay, out, in)
	if !b.ready {
		return
	}
	b.vecs(out, in)
	b.grm.SetRawMatrix(general(out, in+1, b.gr.RawVector().Data))
	b.gf.eig[b.cur].Rotate(&b.grm, &b.gf.g)
	sq := b.sq.RawVector().Data
	for k, x := range b.gr.RawVector().Data {
		sq[k] = x * x
	}
	b.m.Decay, b.v.Decay = b.Decay, b.Decay
	b.m.AddVec(&b.gr)
	b.v.AddVec(&b.sq)
}

// vecs sizes the vector buffers.
func (b *SOAPBlock) vecs(out, in int) {
	if b.gr.IsEmpty() {
		b.gr.ReuseAsVec(out * (in + 1))
		b.sq.ReuseAsVec(out * (in + 1))
	}
}

// Scale returns the mean of √v, or 1 while the moments are empty.
func (b *SOAPBlock) Scale() float64 {
	if b.v.Count() == 0 {
		return 1
	}
	sum := 0.0
	d := b.v.MeanVec().RawVector().Data
	for _, x := range d {
		sum += math.Sqrt(x)
	}
	return positiveOr1(sum / float64(len(d)))
}

// Refresh eigendecomposes the averages of L and R and carries Adam's
// moments into the new basis. It returns ErrNoEstimate before the first
// Update, an error wrapping kron's eigendecomposition errors, and one
// wrapping ErrNotPositiveDefinite when √v + λ is singular to working
// precision (λ = 0 and a zero in v); the basis and moments held before are
// then kept.
func (b *SOAPBlock) Refresh(lambda float64) error {
	const op = "SOAPBlock.Refresh"
	checkBlockDamping(lambda, op)
	if b.gf.count() == 0 {
		return ErrNoEstimate
	}
	i := b.spare(b.cur)
	if err := b.gf.factorize(i); err != nil {
		return fmt.Errorf("curvature: %s: %w", op, err)
	}
	out, in := b.dims.out, b.dims.in
	if b.m.Count() > 0 {
		b.vecs(out, in)
		next, prev := &b.gf.eig[i], &b.gf.eig[b.cur]
		b.grm.SetRawMatrix(general(out, in+1, b.gr.RawVector().Data))
		b.mm.SetRawMatrix(general(out, in+1, b.m.MeanVec().RawVector().Data))
		prev.RotateBack(&b.grm, &b.mm)
		next.Rotate(&b.grm, &b.grm)
		projectScaling(b.sq.RawVector().Data, b.v.MeanVec().RawVector().Data, next, prev, &b.ra, &b.rb, &b.w)
		if ok, low, high := positiveBeyondRounding(b.sq.RawVector().Data, lambda); !ok && lambda == 0 {
			return fmt.Errorf("curvature: %s: second moments from %g to %g without damping: %w", op, low, high, ErrNotPositiveDefinite)
		}
		b.m.ReplaceVec(&b.gr)
		b.v.ReplaceVec(&b.sq)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// Begin marks the current state as the one Rollback returns to (Staged).
func (b *SOAPBlock) Begin() {
	b.begin(b.cur)
	b.gf.begin()
	b.m.Begin()
	b.v.Begin()
}

// Rollback returns b to its state at the last Begin.
func (b *SOAPBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	b.gf.rollback()
	b.m.Rollback()
	b.v.Rollback()
}

// Factors returns the current averages L (n_out²) and R ((n_in+1)²), owned
// by b and valid until the next Update; nil before the first Update.
func (b *SOAPBlock) Factors() (l, r *mat.SymDense) { return b.gf.lAvg.Mean(), b.gf.rAvg.Mean() }

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// the direction Q_L (m ./ (√v + λ)) Q_Rᵀ, zero while the moments are empty.
// It panics before a successful Refresh or for a record of another shape.
func (b *SOAPBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	out, in := b.startPrecondition(dst, l, "SOAPBlock.Precondition")
	if b.m.Count() == 0 {
		dst.Zero()
		return
	}
	m, v := b.m.MeanVec().RawVector().Data, b.v.MeanVec().RawVector().Data
	raw := dst.RawMatrix()
	for o := 0; o < out; o++ {
		row := raw.Data[o*raw.Stride : o*raw.Stride+in+1]
		for c := range row {
			k := o*(in+1) + c
			row[c] = m[k] / (math.Sqrt(v[k]) + b.lambda)
		}
	}
	b.gf.eig[b.cur].RotateBack(dst, dst)
}

// Mul writes dst = Q_L ((Q_Lᵀ V Q_R) ∘ (√v + λ)) Q_Rᵀ for a direction V, or V
// while the moments are empty. An empty dst is resized; dst may be v.
func (b *SOAPBlock) Mul(dst, v *mat.Dense) {
	out, in := b.startMul(dst, v, b.gf.count() > 0, "SOAPBlock.Mul")
	if !b.ready || b.v.Count() == 0 {
		dst.Copy(v)
		return
	}
	reuseWork(&b.den, out, in+1)
	raw := b.den.RawMatrix()
	for k, x := range b.v.MeanVec().RawVector().Data {
		raw.Data[(k/(in+1))*raw.Stride+k%(in+1)] = math.Sqrt(x) + b.lambda
	}
	b.gf.eig[b.cur].MulScaled(dst, v, &b.den)
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.SOAPBlock": its Decay (DefaultDecay for zero), its
// shape, whether a basis is held and its λ, the averages of L and R, Adam's
// moments, and the basis held (a nested kron.EigenKron), bit for bit. It
// returns an error, prefixed "curvature: SOAPBlock: ", for a Decay outside
// [0, 1).
func (b *SOAPBlock) MarshalBinary() ([]byte, error) {
	return marshalGradBlock("SOAPBlock", b.Decay, &b.blockBase, &b.gf, b.cur, &b.m, &b.v)
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that b continues as the saved
// block bit for bit. The Decay of b must be set first as that of the saved
// block: an error, prefixed "curvature: SOAPBlock: ", names it when it
// differs after defaults. Data that is not a valid checkpoint (truncated,
// altered, of another type, with sizes that disagree with the shape,
// moments without a basis) gives an error with that prefix wrapping
// ErrCorruptCheckpoint. On any error b is left unchanged.
func (b *SOAPBlock) UnmarshalBinary(data []byte) error {
	base, gf, avgs, err := unmarshalGradBlock(data, "SOAPBlock", b.Decay, []string{"first moment", "second moment"},
		func(r *state.Reader, base blockBase, gf *gradFactors, avgs []MovingAverage) bool {
			if avgs[0].k != avgs[1].k || (avgs[0].k > 0 && !base.ready) || (base.ready && gf.count() == 0) {
				r.Fail("moments of %d and %d updates, factors of %d, basis held %t", avgs[0].k, avgs[1].k, gf.count(), base.ready)
				return false
			}
			return true
		})
	if err != nil {
		return err
	}
	*b = SOAPBlock{Decay: b.Decay, blockBase: base, gf: gf, m: avgs[0], v: avgs[1]}
	return nil
}
