package optim

import (
	"math"
	"testing"
)

// TestFiniteSlice puts a NaN, +Inf, −Inf or an entry whose square
// overflows at every position of slices of lengths 0 to 9 (the unrolled
// loop and its tail) and checks finiteSlice and finiteSquares against the
// element-by-element definition.
func TestFiniteSlice(t *testing.T) {
	for n := 0; n <= 9; n++ {
		for pos := -1; pos < n; pos++ {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e200, -1e155} {
				x := make([]float64, n)
				for i := range x {
					x[i] = float64(i) - 3.5
				}
				if pos >= 0 {
					x[pos] = bad
				}
				wantFinite, wantSquares := true, true
				for _, v := range x {
					wantFinite = wantFinite && !math.IsNaN(v) && !math.IsInf(v, 0)
					wantSquares = wantSquares && !math.IsNaN(v*v) && !math.IsInf(v*v, 0)
				}
				if got := finiteSlice(x); got != wantFinite {
					t.Errorf("finiteSlice(%v) = %t, want %t", x, got, wantFinite)
				}
				if got := finiteSquares(x); got != wantSquares {
					t.Errorf("finiteSquares(%v) = %t, want %t", x, got, wantSquares)
				}
			}
		}
	}
}
