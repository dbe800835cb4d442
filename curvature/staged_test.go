package curvature

import (
	"bytes"
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/kron"
)

// stagedBlock is a block of this package: checkpointed and Staged.
type stagedBlock interface {
	checkpointed
	Staged
}

// stagedChanges are the changes that TestBlockStagedRollback undoes, each a
// sequence of calls between Begin and Rollback: an Update alone, a Refresh
// alone, a SetAlpha alone (ACP), the step of an optimizer (Update, SetAlpha,
// Refresh), and two of them, whose second Refresh needs a third
// factorization.
func (tc checkpointCase) stagedChanges() map[string][]checkpointStep {
	update := func(seed uint64) checkpointStep {
		return checkpointStep{fmt.Sprintf("Update %d", seed), func(t *testing.T, b checkpointed) { b.Update(tc.record(seed)) }}
	}
	setAlpha := checkpointStep{"SetAlpha", func(t *testing.T, b checkpointed) {
		if acp, ok := b.(*ACPBlock); ok && acp.dims.set {
			acp.SetAlpha(tc.record(61))
		}
	}}
	refresh := func(lambda float64) checkpointStep {
		return checkpointStep{fmt.Sprintf("Refresh %g", lambda), func(t *testing.T, b checkpointed) {
			if _, err := RefreshDamped(b, lambda, kron.Retry{}); err != nil && err != ErrNoEstimate {
				t.Fatal(err)
			}
		}}
	}
	return map[string][]checkpointStep{
		"Update":          {update(60)},
		"Refresh":         {refresh(0.05)},
		"SetAlpha":        {setAlpha},
		"step":            {update(60), setAlpha, refresh(0.05)},
		"two steps":       {update(60), setAlpha, refresh(0.05), update(62), refresh(0.2)},
		"three Refreshes": {refresh(0.05), refresh(0.3), refresh(0.07)},
	}
}

// TestBlockStagedRollback proves that Rollback returns every block to its
// state at Begin bit for bit, its checkpoint identical, whatever the
// changes in between (Updates, SetAlphas, successful Refreshes, several of
// each), from every point of the checkpoint sequence (an empty block, one
// updated but not refreshed, refreshed then updated, …), and that the
// rolled-back block then behaves as a twin restored from the checkpoint of
// Begin (Scale, Mul, Precondition on every path, checkpoint) through the
// rest of the sequence; a second Rollback does nothing.
func TestBlockStagedRollback(t *testing.T) {
	for _, tc := range checkpointCases {
		steps := tc.steps()
		probe := tc.record(50)
		for name, change := range tc.stagedChanges() {
			for _, at := range []int{0, 1, 3, 4, 5, len(steps)} {
				t.Run(fmt.Sprintf("%s/%s after %d steps", tc.name, name, at), func(t *testing.T) {
					b := tc.fresh().(stagedBlock)
					for _, s := range steps[:at] {
						s.do(t, b)
					}
					before := marshal(t, b)
					b.Begin()
					for _, s := range change {
						s.do(t, b)
					}
					b.Rollback()
					if !bytes.Equal(marshal(t, b), before) {
						t.Fatal("the checkpoint after Rollback differs from that at Begin")
					}
					b.Rollback() // nothing to undo
					if !bytes.Equal(marshal(t, b), before) {
						t.Fatal("a second Rollback changed the block")
					}
					twin := tc.fresh()
					if err := twin.UnmarshalBinary(before); err != nil {
						t.Fatal(err)
					}
					checkSame(t, tc, twin, b, probe)
					rest := append(steps[at:len(steps):len(steps)], steps[:3]...)
					for _, s := range rest {
						s.do(t, b)
						s.do(t, twin)
						checkSame(t, tc, twin, b, probe)
					}
				})
			}
		}
	}
}

// TestBlockStagedCommit proves that Begin without Rollback changes nothing:
// a block that calls Begin before each call of the checkpoint sequence (as
// an optimizer does at every step) stays bit for bit the same as one that
// never calls it, and so does one whose every change is first made, rolled
// back, and made again.
func TestBlockStagedCommit(t *testing.T) {
	for _, tc := range checkpointCases {
		t.Run(tc.name, func(t *testing.T) {
			plain, begun, redone := tc.fresh(), tc.fresh().(stagedBlock), tc.fresh().(stagedBlock)
			probe := tc.record(50)
			steps := tc.steps()
			for _, s := range append(steps, steps...) {
				s.do(t, plain)
				begun.Begin()
				s.do(t, begun)
				redone.Begin()
				s.do(t, redone)
				redone.Rollback()
				s.do(t, redone)
				checkSame(t, tc, plain, begun, probe)
				checkSame(t, tc, plain, redone, probe)
			}
		})
	}
}

// TestBlockStagedFailedRefresh: a Refresh that fails inside a stage keeps
// the factorization held (as outside one), and Rollback undoes the Update
// and the failed attempts. The estimates are singular: constant inputs (Ā,
// ACP's covariance) and a zero column of Back (G, the exact block, a row of
// the diagonal) and row of the gradient (Shampoo's L, SOAP's second
// moments), so that Refresh(0) fails where Refresh(0.1) succeeds.
func TestBlockStagedFailedRefresh(t *testing.T) {
	singular := func(tc checkpointCase, seed uint64) *secondorder.Layer {
		l := tc.record(seed)
		l.Input.Apply(func(_, _ int, _ float64) float64 { return 1 }, l.Input)
		r, _ := l.Back.Dims()
		for i := 0; i < r; i++ {
			l.Back.Set(i, 0, 0)
		}
		// No gradient for output 0 either: L = E[G Gᵀ] of Shampoo and
		// SOAP is singular.
		l.GradB.SetVec(0, 0)
		for j := 0; j < tc.in; j++ {
			l.GradW.Set(0, j, 0)
		}
		return l
	}
	for _, tc := range checkpointCases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.fresh().(stagedBlock)
			b.Update(singular(tc, 1))
			if err := b.Refresh(0.1); err != nil {
				t.Fatal(err)
			}
			before := marshal(t, b)
			b.Begin()
			b.Update(singular(tc, 2))
			if _, err := RefreshDamped(b, 0, kron.Retry{Tries: 1}); err == nil {
				t.Fatal("the singular estimate factorized with λ = 0")
			}
			if !b.Ready() || b.(interface{ Damping() float64 }).Damping() != 0.1 {
				t.Fatal("a failed Refresh dropped the factorization held")
			}
			b.Rollback()
			if !bytes.Equal(marshal(t, b), before) {
				t.Fatal("the checkpoint after Rollback differs from that at Begin")
			}
		})
	}
}

// TestMovingAverageStaged proves that Begin and Rollback undo the Adds of
// matrices and of vectors in between (one or several, from an empty
// average or not, across a Reset), bit for bit, and that Begin without
// Rollback changes nothing.
func TestMovingAverageStaged(t *testing.T) {
	rng := newRand(8)
	syms := make([]*mat.SymDense, 6)
	vecs := make([]*mat.VecDense, 6)
	for i := range syms {
		d := mat.NewDense(3, 3, nil)
		d.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, d)
		syms[i] = mat.NewSymDense(3, nil)
		syms[i].SymOuterK(1, d)
		vecs[i] = mat.NewVecDense(4, []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()})
	}
	for _, vec := range []bool{false, true} {
		add := func(a *MovingAverage, i int) {
			if vec {
				a.AddVec(vecs[i])
			} else {
				a.Add(syms[i])
			}
		}
		for _, tc := range []struct {
			name   string
			before int // Adds before Begin
			stage  func(a *MovingAverage)
		}{
			{"one Add to empty", 0, func(a *MovingAverage) { add(a, 3) }},
			{"one Add", 2, func(a *MovingAverage) { add(a, 3) }},
			{"three Adds", 2, func(a *MovingAverage) { add(a, 3); add(a, 4); add(a, 5) }},
			{"Reset and Add", 2, func(a *MovingAverage) { a.Reset(); add(a, 4) }},
			{"nothing", 2, func(a *MovingAverage) {}},
		} {
			t.Run(fmt.Sprintf("vectors %t/%s", vec, tc.name), func(t *testing.T) {
				a, plain, begun := &MovingAverage{Decay: 0.7}, &MovingAverage{Decay: 0.7}, &MovingAverage{Decay: 0.7}
				for i := 0; i < tc.before; i++ {
					add(a, i)
					add(plain, i)
					begun.Begin()
					add(begun, i)
				}
				want := marshal(t, a)
				a.Begin()
				tc.stage(a)
				a.Rollback()
				if !bytes.Equal(marshal(t, a), want) {
					t.Fatal("the checkpoint after Rollback differs from that at Begin")
				}
				for i := 0; i < 6; i++ {
					add(a, i)
					add(plain, i)
					begun.Begin()
					add(begun, i)
				}
				// a saw the same Adds as plain and begun, but for the stage
				// it rolled back.
				w := marshal(t, plain)
				if !bytes.Equal(marshal(t, begun), w) {
					t.Error("Begin without Rollback changed the average")
				}
				ref := &MovingAverage{Decay: 0.7}
				for i := 0; i < tc.before; i++ {
					add(ref, i)
				}
				for i := 0; i < 6; i++ {
					add(ref, i)
				}
				if !bytes.Equal(marshal(t, a), marshal(t, ref)) {
					t.Error("after Rollback, later Adds differ from those of an average that never saw the stage")
				}
			})
		}
	}
}
