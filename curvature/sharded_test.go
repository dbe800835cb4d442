package curvature

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// shardedBlock is a Sharded block of this package with checkpoints.
type shardedBlock interface {
	checkpointed
	Sharded
}

// shardedCases are the cases of checkpointCases whose block is Sharded
// (KFACBlock, EKFACBlock, ACPBlock, ExactBlock, DiagonalBlock).
func shardedCases() []checkpointCase {
	var cs []checkpointCase
	for _, tc := range checkpointCases {
		if _, ok := tc.fresh().(Sharded); ok {
			cs = append(cs, tc)
		}
	}
	return cs
}

// shardedStats returns the statistics of b that Update changes, for the
// comparisons of the tests: K-FAC's factors, EKFAC's factors and (once a
// basis is held) its scaling S, ACP's μ and C_h, the diagonal, the exact
// block.
func shardedStats(b Block) map[string]mat.Matrix {
	switch b := b.(type) {
	case *KFACBlock:
		a, g := b.Factors()
		return map[string]mat.Matrix{"Ā": a, "G": g}
	case *EKFACBlock:
		a, g := b.Factors()
		m := map[string]mat.Matrix{"Ā": a, "G": g}
		if b.s.Count() > 0 {
			var s mat.Dense
			b.Scaling(&s)
			m["S"] = &s
		}
		return m
	case *ACPBlock:
		mu, cov := b.Moments()
		return map[string]mat.Matrix{"μ": mu, "C_h": cov}
	case *DiagonalBlock:
		var d mat.VecDense
		b.Diagonal(&d)
		return map[string]mat.Matrix{"diagonal": &d}
	case *ExactBlock:
		return map[string]mat.Matrix{"C": b.Matrix()}
	}
	panic(fmt.Sprintf("shardedStats: %T", b))
}

// relMax returns max |got − want| / max |want| (both of the same shape).
func relMax(got, want mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(got, want)
	return testutil.MaxAbs(&d) / testutil.MaxAbs(want)
}

// compareStats checks that the statistics of got equal those of want to
// rel relative to the largest entry of each, and returns the largest
// relative difference seen.
func compareStats(t *testing.T, what string, got, want Block, rel float64) float64 {
	t.Helper()
	gs, ws := shardedStats(got), shardedStats(want)
	if len(gs) != len(ws) {
		t.Fatalf("%s: statistics %d, want %d", what, len(gs), len(ws))
	}
	worst := 0.0
	for name, w := range ws {
		g := gs[name]
		if g == nil || w == nil {
			t.Fatalf("%s: statistic %s missing", what, name)
		}
		if testutil.EqualApprox(t, what+": "+name, g, w, 0, rel) {
			worst = max(worst, relMax(g, w))
		}
	}
	return worst
}

// TestShardedEstimateFold proves that Estimate then Fold, the parts left
// untouched, is Update: two blocks fed the same records, one by Update and
// one by Estimate and Fold, with Refreshes in between (so that EKFAC's
// scaling S is estimated in a basis), have the same checkpoint bit for bit
// after every step. For ACPBlock the result is equal only to rounding:
// Estimate carries the batch covariance as the second moment E[hhᵀ] and
// Fold subtracts μμᵀ again, which rounds differently from Update's
// two-pass covariance; its μ and C_h are compared to 1e-13 relative, and
// α_t exactly.
func TestShardedEstimateFold(t *testing.T) {
	for _, tc := range shardedCases() {
		t.Run(tc.name, func(t *testing.T) {
			upd, est := tc.fresh(), tc.fresh().(shardedBlock)
			_, acp := upd.(*ACPBlock)
			for k := 1; k <= 6; k++ {
				l := tc.record(uint64(200 + k))
				upd.Update(l)
				est.Estimate(l)
				est.Fold()
				if k == 2 || k == 4 {
					for _, b := range []Block{upd, est} {
						if _, err := RefreshDamped(b, 0.1, kron.Retry{}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if acp {
					d := compareStats(t, fmt.Sprintf("update %d", k), est, upd, 1e-13)
					if k == 6 {
						t.Logf("ACP: relative difference of Estimate+Fold from Update %.3g", d)
					}
					if g, w := est.(*ACPBlock).CurrentAlpha(), upd.(*ACPBlock).CurrentAlpha(); g != w {
						t.Errorf("update %d: α_t = %v, want %v", k, g, w)
					}
					continue
				}
				if !bytes.Equal(marshal(t, est), marshal(t, upd)) {
					t.Fatalf("update %d: the checkpoint of Estimate+Fold differs from that of Update", k)
				}
			}
			if e, ok := est.(*EKFACBlock); ok && e.s.Count() < 2 {
				t.Errorf("EKFAC's scaling averaged %d estimates, want ≥ 2 (S not exercised)", e.s.Count())
			}
		})
	}
}

// shardLayout is a layout of Back for the records split between shards:
// k rows per example in the default layout (k = 1 is the Monte-Carlo
// Fisher's one row per example, k > 1 the exact Gauss–Newton rows
// J_aᵀ D^{1/2}), or BackExamples (k = 0: every example has a row, some
// more); BackScale 1/n when scale is set, else zero (which means 1/n).
type shardLayout struct {
	name  string
	k     int
	scale bool
}

var shardLayouts = []shardLayout{
	{"one row per example", 1, false},
	{"one row per example, BackScale", 1, true},
	{"3 rows per example", 3, false},
	{"3 rows per example, BackScale", 3, true},
	{"BackExamples", 0, true},
	{"BackExamples, default BackScale", 0, false},
}

// shardedRecords returns a record of n = Σ sizes examples (n_in inputs,
// n_out outputs, Back in the layout) and its split into shards of the
// given sizes: Input and Grad rows, the rows of Back of each shard's
// examples with BackExamples renumbered, BackScale 1/n_shard (or zero).
func shardedRecords(seed uint64, lay shardLayout, sizes []int, in, out int) (*secondorder.Layer, []*secondorder.Layer) {
	n := 0
	for _, s := range sizes {
		n += s
	}
	rng := newRand(seed)
	whole := &secondorder.Layer{
		W:     testutil.RandDense(rng, out, in, 1),
		B:     mat.NewVecDense(out, nil),
		Input: testutil.RandDense(rng, n, in, 1),
		Grad:  testutil.RandDense(rng, n, out, 1),
	}
	var idx []int // example of each row of Back
	if lay.k > 0 {
		for i := 0; i < n; i++ {
			for j := 0; j < lay.k; j++ {
				idx = append(idx, i)
			}
		}
	} else {
		for i := 0; i < n; i++ {
			idx = append(idx, i)
		}
		for j := 0; j < n/2+3; j++ {
			idx = append(idx, rng.IntN(n))
		}
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		whole.BackExamples = idx
	}
	whole.Back = testutil.RandDense(rng, len(idx), out, 1)
	if lay.scale {
		whole.BackScale = 1 / float64(n)
	}
	whole.ComputeParamGrads()

	var shards []*secondorder.Layer
	start := 0
	for _, s := range sizes {
		end := start + s
		l := &secondorder.Layer{
			W:     whole.W,
			B:     whole.B,
			Input: mat.DenseCopyOf(whole.Input.Slice(start, end, 0, in)),
			Grad:  mat.DenseCopyOf(whole.Grad.Slice(start, end, 0, out)),
		}
		var rows []float64
		var ex []int
		for r, e := range idx {
			if e >= start && e < end {
				rows = append(rows, whole.Back.RawRowView(r)...)
				ex = append(ex, e-start)
			}
		}
		l.Back = mat.NewDense(len(ex), out, rows)
		if lay.k == 0 {
			l.BackExamples = ex
		}
		if lay.scale {
			l.BackScale = 1 / float64(s)
		}
		l.ComputeParamGrads()
		shards = append(shards, l)
		start = end
	}
	return whole, shards
}

// combineParts replaces, in every shard's parts, each value of the upper
// triangle of the symmetric parts and each entry of the vectors by
// Σ_w m_w part_w / Σ_w m_w, the combination of data-parallel workers.
func combineParts(t *testing.T, parts [][]Statistic, m []int) {
	t.Helper()
	total := 0
	for _, mw := range m {
		total += mw
	}
	for w := range parts {
		if len(parts[w]) != len(parts[0]) {
			t.Fatalf("shard %d has %d parts, shard 0 %d", w, len(parts[w]), len(parts[0]))
		}
		for p := range parts[w] {
			if parts[w][p].Len() != parts[0][p].Len() || parts[w][p].Sym.N != parts[0][p].Sym.N {
				t.Fatalf("part %d of shard %d has %d values, of shard 0 %d", p, w, parts[w][p].Len(), parts[0][p].Len())
			}
		}
	}
	for p := range parts[0] {
		combine := func(at func(s Statistic) *float64) {
			v := 0.0
			for w := range parts {
				v += float64(m[w]) * *at(parts[w][p])
			}
			v /= float64(total)
			for w := range parts {
				*at(parts[w][p]) = v
			}
		}
		if n := parts[0][p].Sym.N; n > 0 {
			for i := 0; i < n; i++ {
				for j := i; j < n; j++ {
					combine(func(s Statistic) *float64 { return &s.Sym.Data[i*s.Sym.Stride+j] })
				}
			}
			continue
		}
		for i := range parts[0][p].Vec {
			combine(func(s Statistic) *float64 { return &s.Vec[i] })
		}
	}
}

// sharedCoverage returns the number of examples that the parts of b's
// Estimate of l average: BackCover for the blocks that pair Input with
// Back (K-FAC, EKFAC, diagonal), the rows of Input for ACP and the exact
// block.
func sharedCoverage(b Block, l *secondorder.Layer) int {
	switch b.(type) {
	case *ACPBlock, *ExactBlock:
		n, _ := l.Input.Dims()
		return n
	}
	return l.BackCover()
}

// TestShardedCombine proves the property data-parallel training relies
// on: a record of 20 examples split into shards of 7 and 13 (Input and
// Grad rows, the rows of Back of each shard's examples, for every layout
// of Back, BackScale 1/n_shard or zero), each shard given to a block by
// Estimate, the parts combined as Σ m_w part_w / Σ m_w with the examples
// m_w that Estimate returns (which must be 7 and 13), written back into
// each block's parts and folded, gives both blocks the statistics of a
// block given the whole record by Update, to 1e-13 relative: K-FAC's and
// EKFAC's factors, EKFAC's scaling S, ACP's μ and C_h (ACP's α_t, the
// maximum of the shards' RecordAlpha, equals the whole record's), the
// diagonal and the exact block. All blocks first see one common record by
// Update and a Refresh (so that EKFAC estimates S in one basis, bit for bit
// the same in every block), then two sharded records. Ignoring the weights
// with unequal shards would give (A_7 + A_13)/2 instead of
// (7 A_7 + 13 A_13)/20, an O(1) relative error.
func TestShardedCombine(t *testing.T) {
	const in, out = 3, 2
	sizes := []int{7, 13}
	blocks := []struct {
		name string
		new  func() shardedBlock
	}{
		{"KFAC", func() shardedBlock { return &KFACBlock{Decay: 0.5} }},
		{"EKFAC", func() shardedBlock { return &EKFACBlock{Decay: 0.5} }},
		{"ACP", func() shardedBlock { return &ACPBlock{} }},
		{"ACP averaged", func() shardedBlock { return &ACPBlock{Decay: 0.5} }},
		{"Exact", func() shardedBlock { return &ExactBlock{} }},
		{"Diagonal", func() shardedBlock { return &DiagonalBlock{Decay: 0.5} }},
	}
	worst := map[string]float64{}
	for _, bc := range blocks {
		for li, lay := range shardLayouts {
			t.Run(bc.name+"/"+lay.name, func(t *testing.T) {
				whole := bc.new()
				workers := []shardedBlock{bc.new(), bc.new()}
				common := blockRecord(300, 20, in, out, 20, false)
				for _, b := range append([]shardedBlock{whole}, workers...) {
					b.Update(common)
					if err := b.Refresh(0.1); err != nil {
						t.Fatal(err)
					}
				}
				for round := 1; round <= 2; round++ {
					all, shards := shardedRecords(uint64(310+10*li+round), lay, sizes, in, out)
					whole.Update(all)
					parts := make([][]Statistic, len(workers))
					m := make([]int, len(workers))
					for w, b := range workers {
						parts[w], m[w] = b.Estimate(shards[w])
						if m[w] != sizes[w] || m[w] != sharedCoverage(b, shards[w]) {
							t.Fatalf("round %d: shard %d: Estimate returned %d examples, want %d", round, w, m[w], sizes[w])
						}
					}
					combineParts(t, parts, m)
					alpha := 0.0
					for w, b := range workers {
						b.Fold()
						if a, ok := b.(*ACPBlock); ok {
							alpha = max(alpha, a.RecordAlpha(shards[w]))
						}
					}
					for w, b := range workers {
						if a, ok := b.(*ACPBlock); ok {
							a.SetAlphaTo(alpha)
							if g, want := a.CurrentAlpha(), whole.(*ACPBlock).CurrentAlpha(); g != want {
								t.Errorf("round %d: worker %d: α_t = %v, want the whole record's %v", round, w, g, want)
							}
						}
						d := compareStats(t, fmt.Sprintf("round %d, worker %d", round, w), b, whole, 1e-13)
						worst[bc.name] = max(worst[bc.name], d)
					}
				}
				if e, ok := workers[0].(*EKFACBlock); ok && e.s.Count() < 3 {
					t.Errorf("EKFAC's scaling averaged %d estimates, want 3 (S not combined)", e.s.Count())
				}
			})
		}
	}
	for _, bc := range blocks {
		t.Logf("%s: largest relative difference %.3g", bc.name, worst[bc.name])
	}
}

// TestShardedFoldWithoutEstimate proves that Fold panics with a
// "curvature: " message on a new block, after an Update (which folds its
// own estimate) and after an Estimate already folded.
func TestShardedFoldWithoutEstimate(t *testing.T) {
	for _, tc := range shardedCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.fresh().(shardedBlock)
			expectPanic(t, "Fold of a new block", b.Fold, "Fold")
			b.Update(tc.record(1))
			expectPanic(t, "Fold after Update", b.Fold, "Fold")
			b.Estimate(tc.record(2))
			if msg, panicked := testutil.Recover(b.Fold); panicked {
				t.Fatalf("Fold after Estimate panicked: %s", msg)
			}
			expectPanic(t, "second Fold", b.Fold, "no Estimate")
		})
	}
}

// TestShardedExamples proves that the examples Estimate returns are those
// its parts average: the rows that Back covers for K-FAC, EKFAC and the
// diagonal (a τ1 sub-batch of 5 of 12 examples, BackExamples reaching only
// 6 of 9, 3 rows of Back per example), the rows of Input for ACP and the
// exact block; that the input side of K-FAC's and EKFAC's Ā (its last
// column) and ACP's μ are means over exactly those rows; that the exact
// block's part is DenseBlock and the diagonal's its diagonal; and that the
// parts carry the number of values they should (the upper triangles,
// EKFAC's S once a basis is held).
func TestShardedExamples(t *testing.T) {
	const in, out = 4, 3
	subBatch := func() *secondorder.Layer {
		l := blockRecord(400, 12, in, out, 5, false)
		l.BackScale = 0.2
		return l
	}
	partial := func() *secondorder.Layer {
		l := blockRecord(401, 9, in, out, 14, true)
		for r := range l.BackExamples {
			l.BackExamples[r] = r % 6
		}
		l.BackScale = 1.0 / 6
		return l
	}
	perExample := func() *secondorder.Layer { return blockRecord(402, 8, in, out, 24, false) }
	records := []struct {
		name string
		rec  func() *secondorder.Layer
	}{{"tau1 sub-batch", subBatch}, {"partial BackExamples", partial}, {"3 rows per example", perExample}}
	nA, p := in+1, out*(in+1)
	tri := func(n int) int { return n * (n + 1) / 2 }
	for _, bc := range []struct {
		name   string
		new    func() shardedBlock
		values int // values of the parts
	}{
		{"KFAC", func() shardedBlock { return &KFACBlock{} }, tri(nA) + tri(out)},
		{"EKFAC", func() shardedBlock { return &EKFACBlock{} }, tri(nA) + tri(out)},
		{"EKFAC with a basis", func() shardedBlock {
			b := &EKFACBlock{}
			b.Update(blockRecord(403, 10, in, out, 10, false))
			if err := b.Refresh(0.1); err != nil {
				panic(err)
			}
			return b
		}, tri(nA) + tri(out) + p},
		{"ACP", func() shardedBlock { return &ACPBlock{} }, in + tri(in)},
		{"Exact", func() shardedBlock { return &ExactBlock{} }, tri(p)},
		{"Diagonal", func() shardedBlock { return &DiagonalBlock{} }, p},
	} {
		for _, rc := range records {
			t.Run(bc.name+"/"+rc.name, func(t *testing.T) {
				b := bc.new()
				l := rc.rec()
				parts, m := b.Estimate(l)
				n, _ := l.Input.Dims()
				want := l.BackCover()
				if _, ok := b.(*ACPBlock); ok {
					want = n
				} else if _, ok := b.(*ExactBlock); ok {
					want = n
				}
				if m != want {
					t.Fatalf("Estimate returned %d examples, want %d", m, want)
				}
				values := 0
				for _, s := range parts {
					values += s.Len()
				}
				if values != bc.values {
					t.Errorf("parts carry %d values, want %d", values, bc.values)
				}
				// The mean of the first m rows of Input.
				mu := make([]float64, in)
				for i := 0; i < m; i++ {
					for c := range mu {
						mu[c] += l.Input.At(i, c) / float64(m)
					}
				}
				checkMean := func(what string, got func(c int) float64) {
					t.Helper()
					for c, w := range mu {
						if g := got(c); math.Abs(g-w) > 1e-14 {
							t.Errorf("%s[%d] = %.17g, want the mean of %d rows %.17g", what, c, g, m, w)
						}
					}
				}
				switch b.(type) {
				case *KFACBlock, *EKFACBlock:
					a := parts[0].Sym
					checkMean("Ā's last column", func(c int) float64 { return a.Data[c*a.Stride+in] })
				case *ACPBlock:
					checkMean("μ", func(c int) float64 { return parts[0].Vec[c] })
				case *ExactBlock:
					var want, got mat.SymDense
					DenseBlock(&want, l)
					got.SetRawSymmetric(parts[0].Sym)
					testutil.EqualApprox(t, "exact part", &got, &want, 0, 1e-13)
				case *DiagonalBlock:
					var full mat.SymDense
					DenseBlock(&full, l)
					for o := 0; o < out; o++ {
						for c := 0; c <= in; c++ {
							g, w := parts[0].Vec[o*(in+1)+c], full.At(c*out+o, c*out+o)
							if math.Abs(g-w) > 1e-13*math.Abs(w) {
								t.Errorf("diagonal part (%d,%d) = %.17g, want %.17g", o, c, g, w)
							}
						}
					}
				}
				b.Fold()
			})
		}
	}
}

// TestShardedStatisticLen checks Statistic.Len: the length of a vector,
// N(N+1)/2 for a symmetric matrix of order N, 0 for the zero value.
func TestShardedStatisticLen(t *testing.T) {
	s := mat.NewSymDense(4, nil)
	for _, tc := range []struct {
		s    Statistic
		want int
	}{
		{Statistic{Vec: make([]float64, 5)}, 5},
		{Statistic{Sym: s.RawSymmetric()}, 10},
		{Statistic{}, 0},
	} {
		if got := tc.s.Len(); got != tc.want {
			t.Errorf("Len = %d, want %d", got, tc.want)
		}
	}
	if !strings.HasPrefix(testutil.PanicMessage(func() { pendingFold(new(bool), "X") }), "curvature: X.Fold") {
		t.Error("pendingFold without an Estimate does not panic with curvature: X.Fold")
	}
}
