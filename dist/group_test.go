package dist_test

import (
	"math"
	"sync"
	"testing"

	"github.com/secondorder/secondorder/dist"
)

// run calls f on every rank of a group of n, each in its own goroutine.
func run(n int, f func(c dist.Comm)) {
	var wg sync.WaitGroup
	for _, c := range dist.NewGroup(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c)
		}()
	}
	wg.Wait()
}

func TestGroupCollectives(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		got := make([][]float64, n)
		run(n, func(c dist.Comm) {
			r := float64(c.Rank())
			for step := 0; step < 50; step++ { // many collectives in a row: no rank runs ahead
				sum := []float64{r, 1, r * r, float64(step)}
				if err := c.AllReduce(sum, dist.Sum); err != nil {
					t.Error(err)
				}
				mx := []float64{r, -r, math.Inf(-1)}
				if err := c.AllReduce(mx, dist.Max); err != nil {
					t.Error(err)
				}
				b := []float64{r, r + 1}
				if err := c.Broadcast(b, n-1); err != nil {
					t.Error(err)
				}
				bb := []byte{byte(c.Rank()), 7}
				if err := c.BroadcastBytes(bb, 0); err != nil {
					t.Error(err)
				}
				got[c.Rank()] = append(append(append(sum, mx...), b...), float64(bb[0]), float64(bb[1]))
			}
		})
		var s, s2 float64
		for r := 0; r < n; r++ {
			s += float64(r)
			s2 += float64(r * r)
		}
		want := []float64{s, float64(n), s2, float64(n) * 49, float64(n - 1), 0, math.Inf(-1), float64(n - 1), float64(n), 0, 7}
		for r := range got {
			for i := range want {
				if got[r][i] != want[i] {
					t.Errorf("n=%d rank %d: got %v, want %v", n, r, got[r], want)
					break
				}
			}
		}
	}
}

func TestGroupSumIdenticalOnEveryRank(t *testing.T) {
	// Values whose sum depends on the order of the additions: every rank
	// must still get the same bits.
	const n = 4
	vals := []float64{1e16, 1, -1e16, 1}
	got := make([]float64, n)
	run(n, func(c dist.Comm) {
		b := []float64{vals[c.Rank()]}
		if err := c.AllReduce(b, dist.Sum); err != nil {
			t.Error(err)
		}
		got[c.Rank()] = b[0]
	})
	for r := 1; r < n; r++ {
		if math.Float64bits(got[r]) != math.Float64bits(got[0]) {
			t.Fatalf("rank %d got %v, rank 0 %v", r, got[r], got[0])
		}
	}
}

func TestGroupMismatchPanics(t *testing.T) {
	comms := dist.NewGroup(2)
	done := make(chan any, 2)
	for r, c := range comms {
		go func() {
			defer func() { done <- recover() }()
			_ = c.AllReduce(make([]float64, 2+r), dist.Sum)
		}()
	}
	p := <-done
	if p == nil {
		t.Fatal("no panic on buffers of different lengths")
	}
	// The other rank stays blocked in its collective: the group is broken,
	// as an MPI job would be.
}

func TestNilComm(t *testing.T) {
	if dist.Size(nil) != 1 || dist.Rank(nil) != 0 || dist.Parallel(nil) {
		t.Fatal("a nil Comm is one process")
	}
	c := dist.NewGroup(1)[0]
	if dist.Parallel(c) {
		t.Fatal("a group of one is not parallel")
	}
	b := []float64{3}
	if err := c.AllReduce(b, dist.Sum); err != nil || b[0] != 3 {
		t.Fatal(b, err)
	}
}
