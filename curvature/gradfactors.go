package curvature

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// gradFactors are the left and right statistics of a layer's gradient
// matrices G = [∇W ∇b] (n_out × n_A, n_A = n_in+1) that Shampoo (Gupta,
// Koren & Singer 2018) and SOAP (Vyas et al. 2024) precondition with,
//
//	L = E[G Gᵀ] (n_out × n_out),   R = E[Gᵀ G] (n_A × n_A),
//
// moving averages (MovingAverage, warm-started) over the updates, and the
// eigendecompositions of refreshes in kron.EigenKron's layout (A = R,
// B = L, so that its solves act on G), three of them as KFACBlock keeps
// its factorizations.
type gradFactors struct {
	lAvg, rAvg MovingAverage
	lEst, rEst mat.SymDense
	g          mat.Dense
	eig        [3]kron.EigenKron
}

// update folds G Gᵀ and Gᵀ G of the record's gradient into the averages and
// leaves G in f.g.
func (f *gradFactors) update(l *secondorder.Layer, decay float64, out, in int) {
	if f.g.IsEmpty() {
		f.g.ReuseAs(out, in+1)
		f.lEst.ReuseAsSym(out)
		f.rEst.ReuseAsSym(in + 1)
	}
	l.ParamGrad(&f.g)
	g := f.g.RawMatrix()
	blas64.Syrk(blas.NoTrans, 1, g, 0, f.lEst.RawSymmetric())
	blas64.Syrk(blas.Trans, 1, g, 0, f.rEst.RawSymmetric())
	f.lAvg.Decay, f.rAvg.Decay = decay, decay
	f.lAvg.Add(&f.lEst)
	f.rAvg.Add(&f.rEst)
}

// count returns the number of updates averaged.
func (f *gradFactors) count() int { return f.lAvg.Count() }

// factorize eigendecomposes the current averages into f.eig[i].
func (f *gradFactors) factorize(i int) error {
	return f.eig[i].Factorize(f.rAvg.Mean(), f.lAvg.Mean())
}

func (f *gradFactors) begin() {
	f.lAvg.Begin()
	f.rAvg.Begin()
}

func (f *gradFactors) rollback() {
	f.lAvg.Rollback()
	f.rAvg.Rollback()
}

// stateLen and writeState save the averages; readGradFactors restores
// them, recording on r the failures of its checks (sizes n_out and n_A
// when the shape is fixed, equal counts).
func (f *gradFactors) stateLen() int { return f.lAvg.stateLen() + f.rAvg.stateLen() }

func (f *gradFactors) writeState(w *state.Writer) {
	f.lAvg.writeState(w)
	f.rAvg.writeState(w)
}

func readGradFactors(r *state.Reader, decay float64, d blockDims) gradFactors {
	nl, nr := -1, -1
	if d.set {
		nl, nr = d.out, d.in+1
	}
	var f gradFactors
	f.lAvg = readMovingAverage(r, decay, matrixEstimates, nl, "average of L")
	f.rAvg = readMovingAverage(r, decay, matrixEstimates, nr, "average of R")
	if r.Err() == nil && (f.lAvg.k != f.rAvg.k || (f.lAvg.k > 0 && !d.set)) {
		r.Fail("averages of L and R of %d and %d updates for a shape fixed %t", f.lAvg.k, f.rAvg.k, d.set)
	}
	return f
}

// readBasis reads a nested kron.EigenKron and checks its sizes against the
// shape.
func readBasis(r *state.Reader, e *kron.EigenKron, d blockDims) {
	readNested(r, e, "basis")
	if r.Err() != nil {
		return
	}
	if na, nb := e.Dims(); na != d.in+1 || nb != d.out {
		r.Fail("basis of %d and %d for a %d×%d layer", na, nb, d.out, d.in)
	}
}
