package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
)

// DiagonalBlock is the diagonal of the dense per-layer block of eq. 3.3.2
// (ExactBlock), the curvature of a diagonal preconditioner: for the
// parameter (c, o) of θ = [vec(W); b] (input c of h̃ = (h, 1), output o),
//
//	d_{(c,o)} = s Σ_r h̃_{e(r),c}² g_{r,o}²,
//
// with g_r the rows of the record's Back, e(r) = Layer.BackExample(r) and
// s = Layer.BackScaleOrDefault(). Grouping the rows by example,
// q_i = Σ_{r: e(r)=i} g_r∘g_r, it is computed as one product of elementwise
// squares,
//
//	D = s Qᵀ (H̃∘H̃)   (n_out × (n_in+1), D[o, c] = d_{(c,o)}),
//
// over the m_A = Layer.BackCover() examples that Back covers, in
// O(m n_out + m_A P) flops instead of the O(m P²) of the block. Successive
// estimates are averaged with MovingAverage's weight ε_k = min(1 − 1/k,
// Decay) on the old value.
//
// Refresh(λ) inverts d + λ elementwise, Precondition and Mul are
// elementwise products, O(P). Memory: the estimate, its average and the
// inverse, 3P floats, and m_A (n_out + n_in + 1) for the squares. It
// implements Staged (Begin, Rollback, as the optimizers of package optim use
// it to undo a refused step) by keeping two copies of the average and of
// the inverse, allocated at the first Update and Refresh after a Begin: 5P
// floats in all. After the first call of each method at a given batch
// size, no method allocates.
//
// The zero value is ready to use (Decay DefaultDecay); its shapes are fixed
// by the first Update. It is not safe for concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (kind "curvature.DiagonalBlock"):
// MarshalBinary saves its settings and state, the factorization held
// included, UnmarshalBinary restores them into a DiagonalBlock of the same
// settings.
type DiagonalBlock struct {
	// Decay is ε of the moving average of the diagonal, in [0, 1). Zero
	// means DefaultDecay (0.95, Martens & Grosse 2015, §5).
	Decay float64

	blockBase              // shape, factorization held, damping
	q, hs     []float64    // Q (m_A × n_out) and H̃∘H̃ (m_A × (n_in+1))
	est       mat.VecDense // D of the record, row-major n_out × (n_in+1)
	avg       MovingAverage
	estimated bool         // an Estimate awaits its Fold
	part      [1]Statistic // Estimate's view of est
	inv       [2][]float64 // 1/(d + λ), row-major like est; inv[cur] is held
	cur       int
}

// Update folds the diagonal of the record's block (Input, Back, BackScale,
// BackExamples) into the average: Estimate, then Fold. It panics, with a
// message prefixed "curvature: ", when the record lacks Input or Back or
// the layer's shape differs from that of the first Update.
func (b *DiagonalBlock) Update(l *secondorder.Layer) {
	b.Estimate(l)
	b.Fold()
}

// Estimate computes the diagonal of the record's block (n_out·(n_in+1),
// row-major), the mean over its m_A = Layer.BackCover() examples, without
// folding it in, and returns it with m_A (Sharded). It panics as Update
// does.
func (b *DiagonalBlock) Estimate(l *secondorder.Layer) (parts []Statistic, examples int) {
	const op = "DiagonalBlock.Update"
	checkLayer(l, op, true, false, true)
	out, in := b.dims.fix(l, op)
	in1 := in + 1
	cover := l.BackCover()
	if cover == 0 {
		panic("curvature: " + op + ": Back covers no example")
	}
	hs := growFloats(&b.hs, cover*in1)
	h := l.Input.RawMatrix()
	for i := 0; i < cover; i++ {
		row := hs[i*in1 : i*in1+in1]
		for c, v := range h.Data[i*h.Stride : i*h.Stride+in] {
			row[c] = v * v
		}
		row[in] = 1
	}
	if b.est.IsEmpty() {
		b.est.ReuseAsVec(out * in1)
	}
	squaredSum(b.est.RawVector().Data, &b.q, l.Back.RawMatrix(), hs, l, cover, in1)
	b.estimated = true
	b.part[0] = vecStat(b.est.RawVector().Data)
	return b.part[:], cover
}

// Fold folds the diagonal of the last Estimate into the average (Sharded).
func (b *DiagonalBlock) Fold() {
	pendingFold(&b.estimated, "DiagonalBlock")
	b.avg.Decay = b.Decay
	b.avg.AddVec(&b.est)
}

// Diagonal writes the current average d into dst in the order of
// θ = [vec(W); b] (dst[c·n_out + o] = d_{(c,o)}). An empty dst is resized.
// It panics before the first Update.
func (b *DiagonalBlock) Diagonal(dst *mat.VecDense) {
	const op = "DiagonalBlock.Diagonal"
	if b.avg.Count() == 0 {
		panic("curvature: " + op + ": no estimate (call Update first)")
	}
	out, in := b.dims.out, b.dims.in
	reuseVec(dst, out*(in+1), op)
	d := b.avg.MeanVec().RawVector().Data
	for o := 0; o < out; o++ {
		for c := 0; c <= in; c++ {
			dst.SetVec(c*out+o, d[o*(in+1)+c])
		}
	}
}

// Scale returns the mean of the diagonal, tr(C)/P, or 1 before the first
// Update or when it is not positive and finite.
func (b *DiagonalBlock) Scale() float64 {
	if b.avg.Count() == 0 {
		return 1
	}
	d := b.avg.MeanVec().RawVector().Data
	s := 0.0
	for _, v := range d {
		s += v
	}
	return positiveOr1(s / float64(len(d)))
}

// Refresh computes 1/(d + λ) elementwise. It returns ErrNoEstimate before
// the first Update, and an error wrapping ErrNotPositiveDefinite when an
// entry d + λ is not positive (a zero diagonal entry with λ = 0); the
// inverse held before is then kept. Cost: P divisions.
func (b *DiagonalBlock) Refresh(lambda float64) error {
	checkBlockDamping(lambda, "DiagonalBlock.Refresh")
	if b.avg.Count() == 0 {
		return ErrNoEstimate
	}
	d := b.avg.MeanVec().RawVector().Data
	for i, v := range d {
		if !(v+lambda > 0) {
			in1 := b.dims.in + 1
			return fmt.Errorf("curvature: DiagonalBlock.Refresh: entry (input %d, output %d): d + λ = %g: %w", i%in1, i/in1, v+lambda, ErrNotPositiveDefinite)
		}
	}
	// In place, but into the other buffer for the first Refresh of a stage,
	// whose inverse Rollback must find.
	k := b.cur
	if b.staged && k == b.mark.cur {
		k = 1 - k
	}
	inv := growFloats(&b.inv[k], len(d))
	for i, v := range d {
		inv[i] = 1 / (v + lambda)
	}
	b.cur = k
	b.hold(lambda)
	return nil
}

// Begin marks the current state as the one Rollback returns to (Staged):
// the average's and the inverse's.
func (b *DiagonalBlock) Begin() {
	b.begin(b.cur)
	b.avg.Begin()
}

// Rollback returns b to its state at the last Begin, bit for bit: the
// average and its count, the inverse held and its damping, the shape.
// Without a Begin since the last Rollback or UnmarshalBinary it does
// nothing.
func (b *DiagonalBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	b.avg.Rollback()
}

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// [∇W ∇b] / (D + λ) elementwise, from the record's GradW and GradB. It
// panics before a successful Refresh or for a record of another shape.
func (b *DiagonalBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	b.startPrecondition(dst, l, "DiagonalBlock.Precondition")
	l.ParamGrad(dst)
	mulRows(dst.RawMatrix(), b.inv[b.cur], dst.RawMatrix())
}

// Mul writes dst = D ∘ v elementwise (the diagonal block times vec(v)), with
// the current average and no damping. An empty dst is resized; dst may be v.
func (b *DiagonalBlock) Mul(dst, v *mat.Dense) {
	b.startMul(dst, v, b.avg.Count() > 0, "DiagonalBlock.Mul")
	mulRows(dst.RawMatrix(), b.avg.MeanVec().RawVector().Data, v.RawMatrix())
}

// mulRows writes dst = w ∘ v for w stored row-major with dst's shape.
func mulRows(dst blas64.General, w []float64, v blas64.General) {
	c := dst.Cols
	for i := 0; i < dst.Rows; i++ {
		row, vr, wr := dst.Data[i*dst.Stride:i*dst.Stride+c], v.Data[i*v.Stride:i*v.Stride+c], w[i*c:i*c+c]
		for j := range row {
			row[j] = wr[j] * vr[j]
		}
	}
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.DiagonalBlock": its Decay (DefaultDecay for zero), its
// shape, whether a factorization is held and its λ, the moving average of
// the diagonal with its count, and the inverse 1/(d + λ) of the last
// successful Refresh, bit for bit. A block that never saw a record has a
// checkpoint too. It returns an error, prefixed
// "curvature: DiagonalBlock: ", for a Decay outside [0, 1).
func (b *DiagonalBlock) MarshalBinary() ([]byte, error) {
	if err := checkDecay(b.Decay, "DiagonalBlock"); err != nil {
		return nil, err
	}
	n := 8 + baseLen + b.avg.stateLen()
	if b.ready {
		n += 8 + 8*len(b.inv[b.cur])
	}
	return encodeBlock("DiagonalBlock", n, func(w *state.Writer) {
		w.Float(orDefaultDecay(b.Decay))
		b.blockBase.writeState(w)
		b.avg.writeState(w)
		if b.ready {
			w.Floats(b.inv[b.cur])
		}
	}), nil
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Scale, Ready, Damping,
// Diagonal, Precondition and Mul, and the results of later Updates and
// Refreshes, are those of the saved block bit for bit. The Decay of b must
// be set first as that of the saved block: an error, prefixed
// "curvature: DiagonalBlock: ", names it when it differs after defaults
// ("checkpoint has Decay=0.9, this block Decay=0.95"). Data that is not a
// valid checkpoint of DiagonalBlock (truncated, altered, of another type,
// with a shape that is not positive, an average or inverse whose length is
// not P, an inverse entry that is not positive, a damping that is not
// finite and ≥ 0) gives an error with that prefix wrapping
// ErrCorruptCheckpoint, and a Decay outside [0, 1) the error of
// MarshalBinary. On any error b is left unchanged.
func (b *DiagonalBlock) UnmarshalBinary(data []byte) error {
	if err := checkDecay(b.Decay, "DiagonalBlock"); err != nil {
		return err
	}
	var (
		base blockBase
		avg  MovingAverage
		inv  []float64
	)
	err := decodeBlock(data, "DiagonalBlock", func(r *state.Reader) error {
		if err := readSetting(r, "block", "Decay", orDefaultDecay(b.Decay)); err != nil {
			return err
		}
		base = readBlockBase(r)
		p := -1
		if base.dims.set {
			p = base.dims.out * (base.dims.in + 1)
		}
		avg = readMovingAverage(r, b.Decay, vectorEstimates, p, "average")
		if r.Err() == nil && ((avg.k > 0 && !base.dims.set) || (base.ready && avg.k == 0)) {
			r.Fail("average of %d estimates for a shape fixed %t, ready %t", avg.k, base.dims.set, base.ready)
		}
		if base.ready {
			inv = readVec(r, p, "inverse")
			for i, v := range inv {
				if !(v > 0) {
					r.Fail("inverse entry %d is %g, want > 0", i, v)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = DiagonalBlock{Decay: b.Decay, blockBase: base, avg: avg}
	b.inv[0] = inv
	return nil
}

// squaredSum writes into dst (n_out × n_A, row-major) the diagonal
// s Qᵀ (H∘H) of a layer block in the coordinates of back's columns and hs's,
// DiagonalBlock's formula: Q (cover × n_out) holds the per-example sums
// q_i = Σ_{r: e(r)=i} g_r∘g_r of the squared rows g_r of back (example
// e(r) = l.BackExample(r), s = l.BackScaleOrDefault()), computed into the
// buffer q, and hs (cover × n_A) the squared inputs. DiagonalBlock passes
// the record's Back and [H 1]; EKFACBlock both rotated into the factors'
// eigenbases.
func squaredSum(dst []float64, q *[]float64, back blas64.General, hs []float64, l *secondorder.Layer, cover, nA int) {
	out := back.Cols
	qs := growFloats(q, cover*out)
	for i := range qs {
		qs[i] = 0
	}
	for r := 0; r < back.Rows; r++ {
		qe := qs[l.BackExample(r)*out:][:out]
		for o, v := range back.Data[r*back.Stride : r*back.Stride+out] {
			qe[o] += v * v
		}
	}
	blas64.Gemm(blas.Trans, blas.NoTrans, l.BackScaleOrDefault(), general(cover, out, qs), general(cover, nA, hs),
		0, general(out, nA, dst))
}
