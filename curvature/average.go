package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"
)

// DefaultDecay is the decay ε of MovingAverage when its Decay is zero, the
// value of Martens & Grosse (2015, §5).
const DefaultDecay = 0.95

// MovingAverage is the exponentially decaying average of the curvature
// factors of K-FAC (Martens & Grosse 2015, §5), for the input-side Ā and
// output-side G of thesis §3.5.1 or any other symmetric statistic. At the
// k-th call of Add (k = 1, 2, …) with the new estimate X_k,
//
//	M_k = ε_k M_{k−1} + (1 − ε_k) X_k,   ε_k = min(1 − 1/k, ε),
//
// the paper's warm start: ε_1 = 0, so the first estimate is taken as it is,
// and while 1 − 1/k < ε the average is the plain mean of the estimates so
// far (M_k = (1/k) Σ_{j≤k} X_j); from k ≥ 1/(1−ε) on, older estimates decay
// geometrically by ε. This avoids the bias towards the starting value that
// a fixed ε gives early on.
//
// An average holds either symmetric matrices (Add, Mean) or vectors (AddVec,
// MeanVec, e.g. the diagonal of DiagonalBlock), fixed by its first estimate
// after a Reset.
//
// The zero value is ready to use with ε = DefaultDecay. It is not safe for
// concurrent use. Add and AddVec do not allocate after the first estimate
// (and the first after a Begin).
//
// It implements Staged: Begin and Rollback undo the Adds in between, at the
// cost of a second buffer of the average's size, allocated at the first Add
// after the first Begin.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// (kind "curvature.MovingAverage"): MarshalBinary saves its Decay, count and
// average, UnmarshalBinary restores them into a MovingAverage of the same
// Decay.
type MovingAverage struct {
	// Decay is ε, in [0, 1). Zero means DefaultDecay (0.95, Martens &
	// Grosse 2015, §5).
	Decay float64

	k   int
	m   mat.SymDense
	v   mat.VecDense
	vec bool // the estimates are vectors

	// Staging (Begin, Rollback): the average of Begin is kept in altM or
	// altV from the first change after it.
	altM          mat.SymDense
	altV          mat.VecDense
	staged, moved bool
	markK         int
	markVec       bool
}

// Weight returns ε_k = min(1 − 1/k, ε), the weight of the old average at the
// k-th update (k ≥ 1).
func (a *MovingAverage) Weight(k int) float64 {
	if k < 1 {
		panic(fmt.Sprintf("curvature: MovingAverage.Weight: k = %d, want ≥ 1", k))
	}
	eps := a.Decay
	if eps == 0 {
		eps = DefaultDecay
	}
	if !(eps >= 0 && eps < 1) {
		panic(fmt.Sprintf("curvature: MovingAverage: Decay %g, want in [0, 1)", a.Decay))
	}
	return averageWeight(k, eps)
}

// averageWeight returns ε_k = min(1 − 1/k, eps), the warm-started weight of
// the old value at the k-th estimate: the one formula behind
// MovingAverage and the refresh-to-refresh blending of ACPBlock (whose
// Decay zero means no averaging, eps = 0).
func averageWeight(k int, eps float64) float64 {
	return min(1-1/float64(k), eps)
}

// mix returns ε·old + (1 − ε)·x, one step of the average.
func mix(eps, old, x float64) float64 { return eps*old + (1-eps)*x }

// Add folds the estimate x into the average. x must have the size of the
// earlier estimates since the last Reset.
func (a *MovingAverage) Add(x mat.Symmetric) {
	n := x.SymmetricDim()
	if a.k > 0 && a.vec {
		panic("curvature: MovingAverage.Add: the average holds vectors (AddVec)")
	}
	if a.k > 0 && a.m.SymmetricDim() != n {
		panic(fmt.Sprintf("curvature: MovingAverage.Add: estimate is %d×%d, average is %d×%d", n, n, a.m.SymmetricDim(), a.m.SymmetricDim()))
	}
	a.k++
	eps := a.Weight(a.k)
	src := &a.m // the old average
	if a.stage() {
		src = &a.altM
		if a.m.SymmetricDim() != n {
			a.m.Reset()
			a.m.ReuseAsSym(n)
		}
	}
	if a.k == 1 {
		a.vec = false
		a.m.Reset()
		a.m.ReuseAsSym(n)
		a.m.CopySym(x)
		return
	}
	m, o := a.m.RawSymmetric(), src.RawSymmetric()
	if xs, ok := x.(mat.RawSymmetricer); ok && xs.RawSymmetric().Uplo == blas.Upper {
		xr := xs.RawSymmetric()
		for i := 0; i < n; i++ {
			mi, oi, xi := m.Data[i*m.Stride+i:i*m.Stride+n], o.Data[i*o.Stride+i:i*o.Stride+n], xr.Data[i*xr.Stride+i:i*xr.Stride+n]
			for j, v := range xi {
				mi[j] = mix(eps, oi[j], v)
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			m.Data[i*m.Stride+j] = mix(eps, o.Data[i*o.Stride+j], x.At(i, j))
		}
	}
}

// AddVec folds the vector estimate x into the average, with the weights of
// Add. x must have the length of the earlier estimates since the last Reset.
func (a *MovingAverage) AddVec(x mat.Vector) {
	n := x.Len()
	if a.k > 0 && !a.vec {
		panic("curvature: MovingAverage.AddVec: the average holds matrices (Add)")
	}
	if a.k > 0 && a.v.Len() != n {
		panic(fmt.Sprintf("curvature: MovingAverage.AddVec: estimate has length %d, average has %d", n, a.v.Len()))
	}
	a.k++
	eps := a.Weight(a.k)
	src := &a.v // the old average
	if a.stage() {
		src = &a.altV
		if a.v.Len() != n {
			a.v.Reset()
			a.v.ReuseAsVec(n)
		}
	}
	if a.k == 1 {
		a.vec = true
		a.v.Reset()
		a.v.ReuseAsVec(n)
		a.v.CopyVec(x)
		return
	}
	m, o := a.v.RawVector(), src.RawVector()
	if xv, ok := x.(*mat.VecDense); ok {
		xr := xv.RawVector()
		for i := 0; i < n; i++ {
			m.Data[i*m.Inc] = mix(eps, o.Data[i*o.Inc], xr.Data[i*xr.Inc])
		}
		return
	}
	for i := 0; i < n; i++ {
		m.Data[i*m.Inc] = mix(eps, o.Data[i*o.Inc], x.AtVec(i))
	}
}

// ReplaceVec replaces the current average of vectors by x, keeping the
// count, so that later estimates are weighted as they would have been: for
// a change of coordinates of the estimates (EKFACBlock projects its scaling
// onto a new eigenbasis). It panics when the average holds no vector
// estimate or x has another length. Like AddVec it is undone by Rollback.
func (a *MovingAverage) ReplaceVec(x mat.Vector) {
	if a.k == 0 || !a.vec {
		panic("curvature: MovingAverage.ReplaceVec: the average holds no vector estimate")
	}
	n := a.v.Len()
	if x.Len() != n {
		panic(fmt.Sprintf("curvature: MovingAverage.ReplaceVec: vector has length %d, average has %d", x.Len(), n))
	}
	if a.stage() && a.v.Len() != n {
		a.v.Reset()
		a.v.ReuseAsVec(n)
	}
	a.v.CopyVec(x)
}

// Mean returns the current average of matrices, owned by a and valid until
// the next Add or Reset; nil before the first Add or when the average holds
// vectors.
func (a *MovingAverage) Mean() *mat.SymDense {
	if a.k == 0 || a.vec {
		return nil
	}
	return &a.m
}

// MeanVec returns the current average of vectors, owned by a and valid
// until the next AddVec or Reset; nil before the first AddVec or when the
// average holds matrices.
func (a *MovingAverage) MeanVec() *mat.VecDense {
	if a.k == 0 || !a.vec {
		return nil
	}
	return &a.v
}

// Count returns the number of estimates added since the last Reset.
func (a *MovingAverage) Count() int { return a.k }

// Reset forgets all estimates; the next Add starts afresh.
func (a *MovingAverage) Reset() { a.k = 0 }
