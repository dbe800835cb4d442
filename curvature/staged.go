package curvature

// Staged is implemented by blocks that can undo the changes of an update:
// an optimizer calls Begin before the Update, SetAlpha and Refresh of a
// step, and Rollback when it refuses the step, after which the block is
// exactly as it was at Begin, bit for bit, its MarshalBinary included.
//
// The blocks of this package implement it with double buffers swapped at
// no cost in time: from Begin on, the first Update of the statistics writes
// the new estimate or average into a second buffer instead of in place
// (the same flops), and Refresh factorizes into a second factorization as
// it always did; Begin saves the scalars (counts, shape, damping, α, the
// index of the factorization held) and Rollback swaps the buffers back and
// restores them. The cost is memory, stated by each block.
//
// Begin starts a new stage (forgetting the previous one, whose changes are
// kept); Rollback without a Begin since the last Rollback or
// UnmarshalBinary does nothing. A block that does not implement Staged
// keeps the statistics of a refused step.
//
// Implementations need not be safe for concurrent use, and those of this
// package are not.
type Staged interface {
	// Begin marks the current state as the one Rollback returns to.
	Begin()
	// Rollback undoes every change since the last Begin.
	Rollback()
}

// The blocks of this package and MovingAverage, checked at compile time.
var _ = []Staged{(*KFACBlock)(nil), (*ACPBlock)(nil), (*ExactBlock)(nil), (*DiagonalBlock)(nil), (*EKFACBlock)(nil), (*ShampooBlock)(nil), (*SOAPBlock)(nil), (*MovingAverage)(nil)}

// baseMark is what blockBase.begin saves: the state of blockBase and the
// index of the factorization held.
type baseMark struct {
	dims   blockDims
	ready  bool
	lambda float64
	cur    int
}

// begin starts a stage with the factorization cur held.
func (b *blockBase) begin(cur int) {
	b.staged = true
	b.mark = baseMark{dims: b.dims, ready: b.ready, lambda: b.lambda, cur: cur}
}

// rollback restores the state of begin and returns the index of the
// factorization held then; ok is false, and nothing is done, when no stage
// is open.
func (b *blockBase) rollback() (cur int, ok bool) {
	if !b.staged {
		return 0, false
	}
	b.staged = false
	b.dims, b.ready, b.lambda = b.mark.dims, b.mark.ready, b.mark.lambda
	return b.mark.cur, true
}

// spare returns the index, among three, of a factorization buffer for the
// next Refresh attempt: neither cur, held, nor the one held at begin, kept
// for rollback. Outside a stage, or while cur is the one held at begin, it
// is one of the first two, so that a third buffer is used only after two
// successful Refreshes in one stage.
func (b *blockBase) spare(cur int) int {
	for i := 0; ; i++ {
		if i != cur && !(b.staged && i == b.mark.cur) {
			return i
		}
	}
}

// Begin marks the current average as the one Rollback returns to (see
// Staged). The first Add or AddVec after it writes the new average into a
// second buffer, allocated at the first such call, instead of in place.
func (a *MovingAverage) Begin() {
	a.staged, a.moved = true, false
	a.markK, a.markVec = a.k, a.vec
}

// Rollback returns the average to its state at the last Begin, bit for
// bit; without a Begin since the last Rollback or UnmarshalBinary it does
// nothing.
func (a *MovingAverage) Rollback() {
	if !a.staged {
		return
	}
	if a.moved {
		a.m, a.altM = a.altM, a.m
		a.v, a.altV = a.altV, a.v
	}
	a.k, a.vec = a.markK, a.markVec
	a.staged, a.moved = false, false
}

// stage swaps in the second buffers at the first change after Begin, so
// that the average of Begin is kept in altM and altV; it reports whether it
// did, the old average to be read from there.
func (a *MovingAverage) stage() bool {
	if !a.staged || a.moved {
		return false
	}
	a.m, a.altM = a.altM, a.m
	a.v, a.altV = a.altV, a.v
	a.moved = true
	return true
}
