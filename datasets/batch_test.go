package datasets

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// epochs runs b until it stops and returns the indices of each epoch's
// batches, concatenated, and the sizes of the batches.
func epochs(b *Batches) (order [][]int, sizes [][]int) {
	for b.Next() {
		if b.Batch() == 0 {
			if b.Epoch() != len(order) {
				panic("epoch number out of step")
			}
			order = append(order, nil)
			sizes = append(sizes, nil)
		}
		e := b.Epoch()
		order[e] = append(order[e], b.Indices()...)
		sizes[e] = append(sizes[e], b.Len())
	}
	return order, sizes
}

func TestBatchesCoverEachEpoch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int
		cfg       BatchConfig
		wantSizes []int
	}{
		{"exact", 12, BatchConfig{Size: 4, Epochs: 3}, []int{4, 4, 4}},
		{"drop last", 10, BatchConfig{Size: 4, Epochs: 3}, []int{4, 4}},
		{"keep last", 10, BatchConfig{Size: 4, KeepLast: true, Epochs: 3}, []int{4, 4, 2}},
		{"one batch", 5, BatchConfig{Size: 5, Epochs: 4}, []int{5}},
		{"size over n kept", 3, BatchConfig{Size: 8, KeepLast: true, Epochs: 2}, []int{3}},
		{"default size", 250, BatchConfig{Epochs: 2}, []int{100, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBatches(tc.n, rand.New(rand.NewPCG(1, 2)), tc.cfg)
			if b.PerEpoch() != len(tc.wantSizes) {
				t.Errorf("PerEpoch %d, want %d", b.PerEpoch(), len(tc.wantSizes))
			}
			order, sizes := epochs(b)
			if len(order) != tc.cfg.Epochs {
				t.Fatalf("%d epochs, want %d", len(order), tc.cfg.Epochs)
			}
			for e := range order {
				if !slices.Equal(sizes[e], tc.wantSizes) {
					t.Errorf("epoch %d: batch sizes %v, want %v", e, sizes[e], tc.wantSizes)
				}
				// Each row at most once, and all rows when none is dropped.
				seen := make([]int, tc.n)
				for _, i := range order[e] {
					seen[i]++
				}
				for i, c := range seen {
					dropped := tc.n - len(order[e])
					if c > 1 || (c == 0 && dropped == 0) {
						t.Errorf("epoch %d: row %d seen %d times", e, i, c)
					}
				}
			}
			if b.Next() {
				t.Error("Next true after the last epoch")
			}
		})
	}
}

func TestBatchesSeeded(t *testing.T) {
	run := func(seed uint64) [][]int {
		order, _ := epochs(NewBatches(50, rand.New(rand.NewPCG(seed, 7)), BatchConfig{Size: 10, Epochs: 3}))
		return order
	}
	a, b, c := run(1), run(1), run(2)
	for e := range a {
		if !slices.Equal(a[e], b[e]) {
			t.Errorf("epoch %d: same seed gives different orders", e)
		}
		if slices.Equal(a[e], c[e]) {
			t.Errorf("epoch %d: different seeds give the same order", e)
		}
		if e > 0 && slices.Equal(a[e], a[e-1]) {
			t.Errorf("epochs %d and %d have the same order", e-1, e)
		}
	}
	if slices.IsSorted(a[0]) {
		t.Error("first epoch not shuffled")
	}

	// A nil rng gives the rows in order.
	order, _ := epochs(NewBatches(7, nil, BatchConfig{Size: 3, KeepLast: true, Epochs: 2}))
	for _, o := range order {
		if !slices.Equal(o, []int{0, 1, 2, 3, 4, 5, 6}) {
			t.Errorf("order %v without rng", o)
		}
	}
}

func TestBatchesRows(t *testing.T) {
	const n, d, k = 11, 3, 2
	x := mat.NewDense(n, d, nil)
	y := mat.NewDense(n, k, nil)
	labels := make([]int, n)
	for i := range n {
		for j := range d {
			x.Set(i, j, float64(10*i+j))
		}
		for j := range k {
			y.Set(i, j, float64(-10*i-j))
		}
		labels[i] = 100 + i
	}
	b := NewBatches(n, rand.New(rand.NewPCG(3, 4)), BatchConfig{Size: 4, KeepLast: true, Epochs: 3})
	var xb, yb *mat.Dense
	var lb []int
	for b.Next() {
		xb, yb, lb = b.Rows(xb, x), b.Rows(yb, y), b.Labels(lb, labels)
		m := b.Len()
		if r, c := xb.Dims(); r != m || c != d {
			t.Fatalf("x batch %d×%d, want %d×%d", r, c, m, d)
		}
		if r, c := yb.Dims(); r != m || c != k || len(lb) != m {
			t.Fatalf("y batch %d×%d, %d labels, want %d rows", r, c, len(lb), m)
		}
		for r, i := range b.Indices() {
			if !mat.Equal(xb.RowView(r), x.RowView(i)) || !mat.Equal(yb.RowView(r), y.RowView(i)) || lb[r] != labels[i] {
				t.Fatalf("batch row %d is not row %d", r, i)
			}
		}
	}
}

func TestBatchesNoAllocs(t *testing.T) {
	x := mat.NewDense(103, 5, nil)
	labels := make([]int, 103)
	for _, keep := range []bool{false, true} {
		b := NewBatches(103, rand.New(rand.NewPCG(5, 6)), BatchConfig{Size: 10, KeepLast: keep})
		b.Next()
		xb, lb := b.Rows(nil, x), b.Labels(nil, labels)
		allocs := testing.AllocsPerRun(100, func() {
			b.Next()
			xb = b.Rows(xb, x)
			lb = b.Labels(lb, labels)
		})
		if allocs != 0 {
			t.Errorf("KeepLast %v: %v allocations per batch", keep, allocs)
		}
	}
}

func TestBatchesPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"no rows", func() { NewBatches(0, rng, BatchConfig{}) }},
		{"negative size", func() { NewBatches(10, rng, BatchConfig{Size: -1}) }},
		{"negative epochs", func() { NewBatches(10, rng, BatchConfig{Epochs: -1}) }},
		{"size over n dropped", func() { NewBatches(10, rng, BatchConfig{Size: 11}) }},
		{"rows mismatch", func() {
			b := NewBatches(10, rng, BatchConfig{Size: 2})
			b.Next()
			b.Rows(nil, mat.NewDense(9, 2, nil))
		}},
		{"labels mismatch", func() {
			b := NewBatches(10, rng, BatchConfig{Size: 2})
			b.Next()
			b.Labels(nil, make([]int, 11))
		}},
		{"rows before next", func() { NewBatches(10, rng, BatchConfig{Size: 2}).Rows(nil, mat.NewDense(10, 2, nil)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || len(s) < 10 || s[:10] != "datasets: " {
					t.Errorf("panic %v, want a datasets: message", r)
				}
			}()
			tc.f()
		})
	}
}
