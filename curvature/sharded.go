package curvature

import (
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/secondorder/secondorder"
)

// Sharded is implemented by blocks whose statistics of a record are means
// over the record's examples, so that workers that each hold a shard of one
// minibatch can combine them into the statistics of the whole batch (the
// data-parallel training of package optim, through a dist.Comm). Update(l)
// is Estimate(l), the caller's combination of the parts, then Fold():
//
//	parts, m := b.Estimate(l)  // means over the record's m examples
//	// replace every part by Σ_w m_w part_w / Σ_w m_w over the workers w
//	b.Fold()
//
// The parts are owned by the block and valid until its next Estimate or
// Update. With the parts left as they are, Estimate and Fold give the
// statistics of Update, bit for bit for KFACBlock, EKFACBlock, ExactBlock
// and DiagonalBlock and to rounding for ACPBlock (whose batch covariance is
// carried as a second moment, see ACPBlock.Estimate).
//
// The gradient-only blocks (ShampooBlock, SOAPBlock) are not Sharded: their
// statistics are those of the mean gradient, which the workers combine
// before any block sees it.
type Sharded interface {
	Block
	// Estimate computes the statistics of the record (the fields Update
	// reads) without folding them in, and returns them with the number of
	// examples m they are means over. It panics as Update does.
	Estimate(l *secondorder.Layer) (parts []Statistic, examples int)
	// Fold folds the statistics of the last Estimate, as the parts hold
	// them now, into the block's estimate. It panics without an Estimate
	// since the last Fold.
	Fold()
}

// Statistic is one part of a block's Estimate: a vector, or a symmetric
// matrix of which the upper triangle is meaningful (and is all that needs
// to be combined).
type Statistic struct {
	Vec []float64        // a vector, when Sym is empty
	Sym blas64.Symmetric // a symmetric matrix, upper triangle
}

// Len returns the number of values a Statistic carries: len(Vec), or
// N(N+1)/2 for a symmetric matrix of order N.
func (s Statistic) Len() int {
	if s.Sym.N > 0 {
		return s.Sym.N * (s.Sym.N + 1) / 2
	}
	return len(s.Vec)
}

// The Sharded blocks of this package, checked at compile time.
var _ = []Sharded{(*KFACBlock)(nil), (*ACPBlock)(nil), (*ExactBlock)(nil), (*DiagonalBlock)(nil), (*EKFACBlock)(nil)}

// symStat returns the Statistic of a symmetric buffer.
func symStat(s blas64.Symmetric) Statistic { return Statistic{Sym: s} }

// vecStat returns the Statistic of a vector.
func vecStat(v []float64) Statistic { return Statistic{Vec: v} }

// pendingFold panics unless an Estimate awaits its Fold, and clears the mark.
func pendingFold(pending *bool, op string) {
	if !*pending {
		panic("curvature: " + op + ".Fold: no Estimate to fold")
	}
	*pending = false
}

// addOuter adds s·x xᵀ to the upper triangle of a.
func addOuter(a blas64.Symmetric, x []float64, s float64) {
	for i, xi := range x {
		row := a.Data[i*a.Stride : i*a.Stride+a.N]
		for j := i; j < a.N; j++ {
			row[j] += s * xi * x[j]
		}
	}
}
