package curvature

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// ACPBlock is the curvature block of the amortized covariance
// preconditioner of one affine layer (thesis §3.3.3–3.4.2, algorithm 3),
// owning its input statistics:
//
//	C ≈ Ā ⊗ αI_out,   Ā = [ C_h + μμᵀ  μ ]   μ = E[h],  C_h = E[(h−μ)(h−μ)ᵀ] (1/n),
//	                      [ μᵀ         1 ],
//
// in the order of θ = [vec(W); b]. The input statistics are re-estimated
// rarely (every N minibatches in algorithm 3) and the scale α follows every
// minibatch, so the block keeps two values of α: α_t, the current one, set
// by Update and by SetAlpha (a fixed Alpha, or the heuristic
// α = max_{i,j} (∇_{a_i} l)_j², MaxSquaredGrad, of §3.4.2), and α_r, the
// α_t of the last successful Refresh.
//
// Update re-estimates μ and C_h from the record's Input (Mean and the
// centered Covariance, without the cancellation of E[hhᵀ] − μμᵀ) and blends
// them into the statistics of the earlier Updates with the weight
// ε_k = min(1 − 1/k, Decay) on the old value (see merge; Decay zero uses the
// minibatch alone, as algorithm 3).
//
// Refresh(λ) factorizes, with the Tikhonov term of §3.4.2 carried by Ā,
//
//	Ā⊗α_r I + λI = M ⊗ α_r I,   M = Ā + (λ/α_r) I,
//
// by the closed form of kron.AugmentedInverse (FactorizeCov, one attempt),
// and Precondition writes
//
//	(1/α_t) [∇W ∇b] M⁻¹ = unvec((Ā⊗α_t I + (α_t/α_r) λ I)⁻¹ ∇θ),
//
// eqs. 3.3.3 and 3.3.4 (slip 2 corrected) with α_t in place of α: between
// refreshes the effective damping follows α_t. It is computed on the input
// side, (1/α_t)(1/n) Gradᵀ([H 1] M⁻¹) with M⁻¹ formed once per refresh, when
// the batch is small enough for that to be cheaper (n (n_in+1+n_out) <
// n_out (n_in+1)), otherwise by kron.AugmentedInverse.Precondition.
//
// A layer whose Grad is all zero has α = 0 under the heuristic: its step is
// zero, Refresh at α_t = 0 returns nil without factorizing and leaves the
// statistics Pending (a later Refresh retries), and before any successful
// Refresh the block is not Ready. An α so small that λ/α overflows counts as
// zero.
//
// Cost per layer, with n_A = n_in+1 and n rows of Input: Update 3n n_A + n n_A²
// flops (mean, centering, syrk) and O(n_A²) for the blend, plus n n_out for
// the heuristic α; Refresh n_A³/3 flops, and n_A³ more at the first
// input-side Precondition after it to form M⁻¹; Precondition
// 2 n_out n_A² flops on the gradient side, 2n n_A (n_A + n_out) on the input
// side; Mul 2 n_out n_A². Memory: the statistics of the minibatch and the
// blend, two factorizations, M⁻¹, 6 n_A² floats, and buffers of n n_A and
// n_out n_A. It implements Staged (Begin, Rollback, as the optimizers of
// package optim use it to undo a refused step) by keeping a second copy of
// the blended statistics, allocated at the first Update after a Begin, and
// the two factorizations: 7 n_A² floats in all (a third factorization is
// allocated only if two Refreshes succeed between a Begin and a Rollback).
// After the first call of each method at a given batch size, no method
// allocates.
//
// The zero value is ready to use (heuristic α, no averaging); its shapes are
// fixed by the first Update. It is not safe for concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (kind "curvature.ACPBlock"):
// MarshalBinary saves its settings and state, the factorization held
// included, UnmarshalBinary restores them into a ACPBlock of the same
// settings.
type ACPBlock struct {
	// Alpha is a fixed α > 0 (thesis §3.4.2, first approach, a
	// hyperparameter). Zero selects the heuristic max_{i,j} (∇_{a_i} l)_j² of
	// the record's Grad (second approach). Negative is refused.
	Alpha float64
	// Decay in [0, 1) is the weight ε of the old statistics when a new
	// estimate is blended in, ε_k = min(1 − 1/k, Decay) at the k-th Update
	// (Martens & Grosse 2015, §5). Zero means no averaging: each Update
	// replaces the statistics, as in algorithm 3.
	Decay float64

	blockBase              // shape, factorization held, damping
	k         int          // Updates blended
	mu, muB   mat.VecDense // blended and minibatch mean
	cov, cvB  mat.SymDense // blended and minibatch covariance
	cbuf      []float64    // covariance workspace
	alpha     float64      // α_t
	alphaR    float64      // α_r
	pending   bool         // statistics blended since the last factorization

	inv [3]kron.AugmentedInverse // inv[cur] is held, inv[spare(cur)] is for the next attempt
	cur int

	// Staging: the blended statistics of Begin, kept in muAlt and covAlt
	// from the first Update after it, and the scalars at Begin.
	muAlt  mat.VecDense
	covAlt mat.SymDense
	moved  bool
	amark  acpMark

	// Input side: M⁻¹ = I M⁻¹, formed through views of an identity.
	minv        *mat.Dense
	minvW, eyeW *mat.Dense
	minvB, eyeB *mat.VecDense
	minvOK      bool
	haug, z     []float64
	gw          mat.Dense    // ΔW on the gradient side
	gb          mat.VecDense // Δb on the gradient side
	mulW, mulT  []float64    // Mul workspaces
	path        solvePath

	estimated bool         // an Estimate awaits its Fold
	estAlpha  float64      // α_t of the last Estimate's record
	part      [2]Statistic // Estimate's views of muB and cvB
}

// Update re-estimates the mean and covariance of the record's Input, blends
// them into the block's statistics (see merge) and sets α_t from the record
// (Alpha, or MaxSquaredGrad of its Grad). Call it once per refresh of the
// statistics. It panics, with a message prefixed "curvature: ", when the
// record lacks Input (or Grad for the heuristic α) or the layer's shape
// differs from that of the first Update.
func (b *ACPBlock) Update(l *secondorder.Layer) {
	alpha := b.estimate(l)
	b.estimated = false // muB and cvB now hold this record's statistics
	b.blend(alpha)
}

// Estimate computes the mean μ_B (n_in) and the second moment
// E[hhᵀ] = C_B + μ_B μ_Bᵀ (n_in², upper triangle) of the record's Input
// without blending them in, and returns them with the number n of rows of
// Input (Sharded). The second moment rather than the covariance C_B is what
// shards combine by their weighted mean; Fold subtracts μμᵀ again, which
// rounds differently from Update's two-pass covariance by about
// ε |μ|² (ε the machine epsilon). α_t is the record's (RecordAlpha): a
// worker holding a shard sets the maximum over the shards after Fold, with
// SetAlphaTo. It panics as Update does.
func (b *ACPBlock) Estimate(l *secondorder.Layer) (parts []Statistic, examples int) {
	b.estAlpha = b.estimate(l)
	addOuter(b.cvB.RawSymmetric(), b.muB.RawVector().Data, 1)
	b.estimated = true
	b.part[0], b.part[1] = vecStat(b.muB.RawVector().Data), symStat(b.cvB.RawSymmetric())
	n, _ := l.Input.Dims()
	return b.part[:], n
}

// Fold blends the mean and covariance of the last Estimate into the block's
// statistics and sets α_t to the record's (Sharded).
func (b *ACPBlock) Fold() {
	pendingFold(&b.estimated, "ACPBlock")
	addOuter(b.cvB.RawSymmetric(), b.muB.RawVector().Data, -1)
	b.blend(b.estAlpha)
}

// estimate computes μ_B and C_B of the record into muB and cvB, and returns
// its α_t.
func (b *ACPBlock) estimate(l *secondorder.Layer) float64 {
	const op = "ACPBlock.Update"
	checkLayer(l, op, true, false, false)
	_, in := b.dims.fix(l, op)
	alpha := b.alphaOf(l, op)
	if !(b.Decay >= 0 && b.Decay < 1) {
		panic(fmt.Sprintf("curvature: %s: Decay %g, want in [0, 1)", op, b.Decay))
	}
	if b.k == 0 {
		for _, v := range []*mat.VecDense{&b.mu, &b.muB} {
			if v.IsEmpty() {
				v.ReuseAsVec(in)
			}
		}
		for _, s := range []*mat.SymDense{&b.cov, &b.cvB} {
			if s.IsEmpty() {
				s.ReuseAsSym(in)
			}
		}
	}
	h := l.Input.RawMatrix()
	columnMeans(b.muB.RawVector(), h)
	covariance(b.cvB.RawSymmetric(), h, b.muB.RawVector().Data, &b.cbuf)
	return alpha
}

// blend merges μ_B and C_B into the statistics (merge) and sets α_t.
func (b *ACPBlock) blend(alpha float64) {
	in := b.dims.in
	mu, cov := &b.mu, &b.cov // the old statistics
	if b.staged && !b.moved {
		// Blend into the second buffers, keeping those of Begin.
		b.mu, b.muAlt = b.muAlt, b.mu
		b.cov, b.covAlt = b.covAlt, b.cov
		b.moved = true
		mu, cov = &b.muAlt, &b.covAlt
		if b.mu.IsEmpty() {
			b.mu.ReuseAsVec(in)
			b.cov.ReuseAsSym(in)
		}
	}
	b.k++
	b.merge(averageWeight(b.k, b.Decay), mu, cov)
	b.alpha = alpha
	b.pending = true
}

// merge blends the minibatch mean μ_B and covariance C_B into the block's
// μ and C with the weight ε on the old values, read from mu and cov (which
// may be b.mu and b.cov: in place). Averaging μ and E[hhᵀ] linearly, as
// MovingAverage does, is for the covariance
//
//	C ← ε C + (1−ε) C_B + ε(1−ε) (μ − μ_B)(μ − μ_B)ᵀ,   μ ← ε μ + (1−ε) μ_B,
//
// which avoids the cancellation of E[hhᵀ] − μμᵀ. With ε = 0 it copies.
func (b *ACPBlock) merge(eps float64, mu *mat.VecDense, cov *mat.SymDense) {
	if eps == 0 {
		b.mu.CopyVec(&b.muB)
		b.cov.CopySym(&b.cvB)
		return
	}
	in := b.dims.in
	m, om, mb := b.mu.RawVector().Data, mu.RawVector().Data, b.muB.RawVector().Data
	c, oc, cb := b.cov.RawSymmetric(), cov.RawSymmetric(), b.cvB.RawSymmetric()
	w := eps * (1 - eps)
	for i := 0; i < in; i++ {
		di := om[i] - mb[i]
		cr := c.Data[i*c.Stride : i*c.Stride+in]
		or := oc.Data[i*oc.Stride : i*oc.Stride+in]
		br := cb.Data[i*cb.Stride : i*cb.Stride+in]
		for j := i; j < in; j++ {
			cr[j] = mix(eps, or[j], br[j]) + w*di*(om[j]-mb[j])
		}
	}
	for i := range in {
		m[i] = mix(eps, om[i], mb[i])
	}
}

// acpMark is the state of ACPBlock's scalars that Begin saves.
type acpMark struct {
	k             int
	alpha, alphaR float64
	pending       bool
}

// Begin marks the current state as the one Rollback returns to (Staged):
// the blended statistics', α_t's and the factorization's.
func (b *ACPBlock) Begin() {
	b.begin(b.cur)
	b.moved = false
	b.amark = acpMark{k: b.k, alpha: b.alpha, alphaR: b.alphaR, pending: b.pending}
}

// Rollback returns b to its state at the last Begin, bit for bit: the
// blended statistics and their count, α_t and α_r, whether statistics are
// pending, the factorization held and its damping, the shape. Without a
// Begin since the last Rollback or UnmarshalBinary it does nothing.
func (b *ACPBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	if cur != b.cur {
		b.cur, b.minvOK = cur, false // M⁻¹ was formed for another factorization
	}
	if b.moved {
		b.mu, b.muAlt = b.muAlt, b.mu
		b.cov, b.covAlt = b.covAlt, b.cov
		b.moved = false
	}
	b.k, b.alpha, b.alphaR, b.pending = b.amark.k, b.amark.alpha, b.amark.alphaR, b.amark.pending
}

// SetAlpha sets α_t from the record without touching the statistics: Alpha
// when fixed, else MaxSquaredGrad of the record's Grad (thesis §3.4.2). An
// optimizer calls it at every minibatch between refreshes. Cost: n n_out.
func (b *ACPBlock) SetAlpha(l *secondorder.Layer) {
	const op = "ACPBlock.SetAlpha"
	b.dims.check(l, op)
	b.alpha = b.alphaOf(l, op)
}

// RecordAlpha returns the α_t that SetAlpha would set for the record:
// Alpha, or MaxSquaredGrad of its Grad. Workers holding shards of one
// minibatch combine theirs by their maximum and set it with SetAlphaTo.
func (b *ACPBlock) RecordAlpha(l *secondorder.Layer) float64 {
	const op = "ACPBlock.RecordAlpha"
	b.dims.check(l, op)
	return b.alphaOf(l, op)
}

// SetAlphaTo sets α_t, the output scale of the steps until the next Update
// or SetAlpha, to a (finite and ≥ 0, else it panics).
func (b *ACPBlock) SetAlphaTo(a float64) {
	if !(a >= 0) || math.IsInf(a, 1) {
		panic(fmt.Sprintf("curvature: ACPBlock.SetAlphaTo: α %g, want finite and ≥ 0", a))
	}
	b.alpha = a
}

// alphaOf returns Alpha when positive, else the heuristic α of l's Grad.
func (b *ACPBlock) alphaOf(l *secondorder.Layer, op string) float64 {
	if !(b.Alpha >= 0) || math.IsInf(b.Alpha, 1) {
		panic(fmt.Sprintf("curvature: %s: Alpha %g, want finite and > 0, or 0 for the heuristic", op, b.Alpha))
	}
	if b.Alpha > 0 {
		return b.Alpha
	}
	if l.Grad == nil {
		panic(fmt.Sprintf("curvature: %s: the heuristic α needs the layer's Grad (or set Alpha)", op))
	}
	return maxSquared(l.Grad.RawMatrix())
}

// CurrentAlpha returns α_t, the current scale (0 before the first Update).
func (b *ACPBlock) CurrentAlpha() float64 { return b.alpha }

// RefreshAlpha returns α_r, the α_t of the last successful Refresh (0
// before it).
func (b *ACPBlock) RefreshAlpha() float64 { return b.alphaR }

// Pending reports whether statistics blended by Update have not been
// factorized yet (a Refresh at α_t = 0 leaves them pending).
func (b *ACPBlock) Pending() bool { return b.pending }

// Moments returns the blended mean μ (n_in) and covariance C_h (n_in²),
// owned by b and valid until the next Update; nil before the first Update.
func (b *ACPBlock) Moments() (mu *mat.VecDense, cov *mat.SymDense) {
	if b.k == 0 {
		return nil, nil
	}
	return &b.mu, &b.cov
}

// InputFactor writes into dst the bias-augmented second moment
// Ā = [[C_h + μμᵀ, μ], [μᵀ, 1]] of the blended statistics. An empty dst is
// resized. It panics before the first Update.
func (b *ACPBlock) InputFactor(dst *mat.SymDense) {
	const op = "ACPBlock.InputFactor"
	if b.k == 0 {
		panic("curvature: " + op + ": no estimate (call Update first)")
	}
	in := b.dims.in
	reuseSym(dst, in+1, op)
	m := b.mu.RawVector().Data
	for i := 0; i < in; i++ {
		for j := i; j < in; j++ {
			dst.SetSym(i, j, b.cov.At(i, j)+m[i]*m[j])
		}
		dst.SetSym(i, in, m[i])
	}
	dst.SetSym(in, in, 1)
}

// Scale returns the mean eigenvalue of Ā ⊗ α_t I,
//
//	α_t tr(Ā)/(n_in+1) = α_t (tr C_h + μᵀμ + 1)/(n_in+1),
//
// or 1 before the first Update or when it is not positive and finite (α_t =
// 0). At a refresh α_t is α_r, so a relative damping computed just before
// Refresh is in the units of the factorized block.
func (b *ACPBlock) Scale() float64 {
	if b.k == 0 {
		return 1
	}
	in := b.dims.in
	m := b.mu.RawVector().Data
	c := b.cov.RawSymmetric()
	tr := 1.0
	for i := 0; i < in; i++ {
		tr += c.Data[i*c.Stride+i] + m[i]*m[i]
	}
	return positiveOr1(b.alpha * tr / float64(in+1))
}

// Refresh factorizes M = Ā + (λ/α_t) I of the blended statistics
// (kron.AugmentedInverse.FactorizeCov, one attempt) and makes α_t the α_r of
// Precondition. It returns ErrNoEstimate before the first Update, nil without
// factorizing when α_t = 0 (see the type), and an error wrapping
// ErrNotPositiveDefinite when the damped Schur complement is not positive
// definite (C_h singular and λ = 0); the factorization held before is then
// kept. Cost: n_in³/3 flops.
func (b *ACPBlock) Refresh(lambda float64) error {
	checkBlockDamping(lambda, "ACPBlock.Refresh")
	if b.k == 0 {
		return ErrNoEstimate
	}
	lp := lambda / b.alpha
	if !(b.alpha > 0) || math.IsInf(lp, 1) {
		return nil
	}
	i := b.spare(b.cur)
	next := &b.inv[i]
	next.Retry = kron.Retry{Tries: 1}
	if err := next.FactorizeCov(&b.cov, &b.mu, lp); err != nil {
		return fmt.Errorf("curvature: ACPBlock.Refresh: %w", err)
	}
	b.cur = i
	b.hold(lambda)
	b.alphaR = b.alpha
	b.pending, b.minvOK = false, false
	return nil
}

// Damping returns the λ of the factorization held, in the units of
// Ā ⊗ α_r I (its damping on Ā is λ/α_r); 0 before the first successful
// Refresh.
func (b *ACPBlock) Damping() float64 { return b.lambda }

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// the direction (1/α_t) [∇W ∇b] M⁻¹ of the factorization held, zero when
// α_t = 0 (or 1/α_t overflows): on the input side, (1/α_t)(1/n) Gradᵀ
// ([H 1] M⁻¹), when Grad and Input have the same n rows and
// n (n_in+1+n_out) < n_out (n_in+1), else from GradW and GradB. It panics
// before a successful Refresh or for a record of another shape.
func (b *ACPBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	const op = "ACPBlock.Precondition"
	out, in := b.startPrecondition(dst, l, op)
	c := 1 / b.alpha
	if !(b.alpha > 0) || math.IsInf(c, 1) {
		dst.Zero()
		return
	}
	in1 := in + 1
	if n, ok := batchRows(l); ok && b.path != pathGradient && (b.path == pathBatch || n*(in1+out) < out*in1) {
		b.formInverse()
		haug := general(n, in1, growFloats(&b.haug, n*in1))
		z := general(n, in1, growFloats(&b.z, n*in1))
		augmentRows(haug, l.Input.RawMatrix())
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, haug, b.minv.RawMatrix(), 0, z)
		blas64.Gemm(blas.Trans, blas.NoTrans, c/float64(n), l.Grad.RawMatrix(), z, 0, dst.RawMatrix())
		return
	}
	if l.GradW == nil || l.GradB == nil {
		panic("curvature: " + op + ": layer has no GradW or GradB")
	}
	if b.gw.IsEmpty() {
		b.gw.ReuseAs(out, in)
		b.gb.ReuseAsVec(out)
	}
	b.inv[b.cur].Precondition(&b.gw, &b.gb, l.GradW, l.GradB)
	d, w := dst.RawMatrix(), b.gw.RawMatrix()
	gb := b.gb.RawVector()
	for i := 0; i < out; i++ {
		row := d.Data[i*d.Stride : i*d.Stride+in1]
		for j, v := range w.Data[i*w.Stride : i*w.Stride+in] {
			row[j] = c * v
		}
		row[in] = c * gb.Data[i*gb.Inc]
	}
}

// formInverse forms M⁻¹ = I M⁻¹ explicitly, once per refresh, with
// kron.AugmentedInverse.Precondition applied to the rows of the identity.
func (b *ACPBlock) formInverse() {
	if b.minvOK {
		return
	}
	in := b.dims.in
	in1 := in + 1
	if b.minv == nil {
		b.minv = mat.NewDense(in1, in1, nil)
		eye := mat.NewDense(in1, in1, nil)
		for i := 0; i < in1; i++ {
			eye.Set(i, i, 1)
		}
		b.minvW = b.minv.Slice(0, in1, 0, in).(*mat.Dense)
		b.minvB = b.minv.ColView(in).(*mat.VecDense)
		b.eyeW = eye.Slice(0, in1, 0, in).(*mat.Dense)
		b.eyeB = eye.ColView(in).(*mat.VecDense)
	}
	b.inv[b.cur].Precondition(b.minvW, b.minvB, b.eyeW, b.eyeB)
	b.minvOK = true
}

// Mul writes dst = unvec((Ā ⊗ α_t I) vec(v)) = α_t v Ā for a direction v
// (n_out × (n_in+1)), with the blended statistics and no damping:
//
//	t = v_W μ + v_b,   dst = α_t [v_W C_h + t μᵀ   t].
//
// An empty dst is resized; dst may be v. Cost: 2 n_out n_A² flops.
func (b *ACPBlock) Mul(dst, v *mat.Dense) {
	out, in := b.startMul(dst, v, b.k > 0, "ACPBlock.Mul")
	vr := v.RawMatrix()
	vw := blas64.General{Rows: out, Cols: in, Stride: vr.Stride, Data: vr.Data}
	w := general(out, in, growFloats(&b.mulW, out*in))
	t := growFloats(&b.mulT, out)
	for i := range t {
		t[i] = vr.Data[i*vr.Stride+in]
	}
	blas64.Gemv(blas.NoTrans, 1, vw, b.mu.RawVector(), 1, blas64.Vector{N: out, Inc: 1, Data: t})
	blas64.Symm(blas.Right, 1, b.cov.RawSymmetric(), vw, 0, w)
	m := b.mu.RawVector().Data
	d := dst.RawMatrix()
	for i := 0; i < out; i++ {
		row := d.Data[i*d.Stride : i*d.Stride+in+1]
		for j, x := range w.Data[i*in : i*in+in] {
			row[j] = b.alpha * (x + t[i]*m[j])
		}
		row[in] = b.alpha * t[i]
	}
}

// checkSettings returns an error, prefixed "curvature: ACPBlock: ", for an
// Alpha that is negative or not finite or a Decay outside [0, 1).
func (b *ACPBlock) checkSettings() error {
	if !(b.Alpha >= 0) || math.IsInf(b.Alpha, 1) {
		return fmt.Errorf("curvature: ACPBlock: Alpha=%g, want finite and > 0, or 0 for the heuristic", b.Alpha)
	}
	return checkDecay(b.Decay, "ACPBlock")
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.ACPBlock": its Alpha and Decay, its shape, whether a
// factorization is held and its λ, the number of Updates blended, the
// blended mean μ and covariance C_h, α_t and α_r, whether statistics are
// pending, and the factorization held (a nested kron.AugmentedInverse: λ/α_r,
// μ and the Cholesky factor of the damped Schur complement of the last
// successful Refresh, bit for bit). M⁻¹ of the input side is not saved: it
// is formed again from the factorization held. A block that never saw a
// record has a checkpoint too. It returns an error, prefixed
// "curvature: ACPBlock: ", for an invalid Alpha or Decay.
func (b *ACPBlock) MarshalBinary() ([]byte, error) {
	if err := b.checkSettings(); err != nil {
		return nil, err
	}
	var inv []byte
	if b.ready {
		var err error
		if inv, err = b.inv[b.cur].MarshalBinary(); err != nil {
			return nil, fmt.Errorf("curvature: ACPBlock: %w", err)
		}
	}
	n := 16 + baseLen + 8 + 8 + 8 + 1
	if b.k > 0 {
		n += 8 + 8*b.mu.Len() + symLen(b.cov.SymmetricDim())
	}
	if b.ready {
		n += 8 + len(inv)
	}
	return encodeBlock("ACPBlock", n, func(w *state.Writer) {
		w.Float(b.Alpha)
		w.Float(b.Decay)
		b.blockBase.writeState(w)
		w.Int(b.k)
		if b.k > 0 {
			writeVec(w, &b.mu)
			writeSym(w, b.cov.RawSymmetric())
		}
		w.Float(b.alpha)
		w.Float(b.alphaR)
		w.Bool(b.pending)
		if b.ready {
			w.Bytes(inv)
		}
	}), nil
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Scale, Ready, CurrentAlpha,
// RefreshAlpha, Pending, Damping, Moments, Precondition and Mul, and the
// results of later Updates, SetAlphas and Refreshes, are those of the
// saved block bit for bit. The Alpha and Decay of b must be set first as
// those of the saved block: an error, prefixed "curvature: ACPBlock: ",
// names the first that differs ("checkpoint has Alpha=0.5, this block
// Alpha=0"). Data that is not a valid checkpoint of ACPBlock (truncated,
// altered, of another type, with a shape that is not positive, statistics
// or factors whose sizes are not those of the shape, an α or damping that
// is negative or NaN) gives an error with that prefix wrapping
// ErrCorruptCheckpoint, and invalid settings the error of MarshalBinary.
// On any error b is left unchanged.
func (b *ACPBlock) UnmarshalBinary(data []byte) error {
	if err := b.checkSettings(); err != nil {
		return err
	}
	var (
		base          blockBase
		k             int
		mu            []float64
		cov           blas64.Symmetric
		alpha, alphaR float64
		pending       bool
		inv           = kron.AugmentedInverse{Retry: kron.Retry{Tries: 1}}
	)
	err := decodeBlock(data, "ACPBlock", func(r *state.Reader) error {
		if err := readSetting(r, "block", "Alpha", b.Alpha); err != nil {
			return err
		}
		if err := readSetting(r, "block", "Decay", b.Decay); err != nil {
			return err
		}
		base = readBlockBase(r)
		in := base.dims.in
		if k = r.Int(); r.Err() == nil && (k < 0 || (k > 0 && !base.dims.set) || (base.ready && k == 0)) {
			r.Fail("%d Updates for a shape fixed %t, ready %t", k, base.dims.set, base.ready)
		}
		if k > 0 {
			mu = readVec(r, in, "mean")
			cov = readSym(r, in, "covariance")
		}
		alpha, alphaR, pending = r.Float(), r.Float(), r.Bool()
		if r.Err() != nil {
			return nil
		}
		if !(alpha >= 0) || !(alphaR >= 0) || (base.ready != (alphaR > 0)) {
			r.Fail("α_t = %g, α_r = %g (ready %t), want ≥ 0, α_r > 0 exactly when ready", alpha, alphaR, base.ready)
			return nil
		}
		if base.ready {
			readNested(r, &inv, "factorization")
			if r.Err() == nil && (inv.Dim() != in || inv.Damping() != base.lambda/alphaR) {
				r.Fail("factorization of size %d and damping %g for %d inputs and damping λ/α_r = %g", inv.Dim(), inv.Damping(), in, base.lambda/alphaR)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = ACPBlock{Alpha: b.Alpha, Decay: b.Decay, blockBase: base, k: k, alpha: alpha, alphaR: alphaR, pending: pending, path: b.path}
	b.inv[0] = inv
	if k > 0 {
		// The minibatch statistics are workspaces that Update sizes only at
		// its first call.
		b.mu.ReuseAsVec(len(mu))
		copy(b.mu.RawVector().Data, mu)
		b.cov.SetRawSymmetric(cov)
		b.muB.ReuseAsVec(len(mu))
		b.cvB.ReuseAsSym(len(mu))
	}
	return nil
}
