package datasets

import (
	"bytes"
	"encoding"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/internal/state"
)

var (
	_ encoding.BinaryMarshaler   = (*Batches)(nil)
	_ encoding.BinaryUnmarshaler = (*Batches)(nil)
)

// batchStep is what a caller sees of one batch.
type batchStep struct {
	ok           bool
	indices      []int
	epoch, batch int
}

func (s batchStep) equal(t batchStep) bool {
	return s.ok == t.ok && slices.Equal(s.indices, t.indices) && s.epoch == t.epoch && s.batch == t.batch
}

func current(b *Batches, ok bool) batchStep {
	return batchStep{ok, slices.Clone(b.Indices()), b.Epoch(), b.Batch()}
}

// TestBatchesResume interrupts an iterator after every number of batches
// k, saves it and its PCG source, restores both into fresh ones and checks
// that the restored iterator gives the rest of the sequence of the
// uninterrupted one, to the end.
func TestBatchesResume(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		shuffle bool
		cfg     BatchConfig
		steps   int // calls of Next in all, past the end when Epochs is set
	}{
		{"drop last", 10, true, BatchConfig{Size: 4, Epochs: 3}, 9},
		{"keep last", 10, true, BatchConfig{Size: 4, KeepLast: true, Epochs: 3}, 12},
		{"exact", 12, true, BatchConfig{Size: 4, Epochs: 2}, 9},
		{"one batch per epoch", 5, true, BatchConfig{Size: 5, Epochs: 3}, 6},
		{"size over n kept", 3, true, BatchConfig{Size: 8, KeepLast: true, Epochs: 2}, 4},
		{"one epoch", 7, true, BatchConfig{Size: 2, Epochs: 1}, 5},
		{"no epoch limit", 10, true, BatchConfig{Size: 3}, 14},
		{"no epoch limit keep last", 10, true, BatchConfig{Size: 3, KeepLast: true}, 17},
		{"default size", 250, true, BatchConfig{Epochs: 2}, 6},
		{"nil rng", 7, false, BatchConfig{Size: 3, KeepLast: true, Epochs: 2}, 8},
		{"nil rng drop last", 7, false, BatchConfig{Size: 3}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// newBatches returns a Batches and its source (nil without shuffle).
			newBatches := func(seed uint64) (*Batches, *rand.PCG) {
				if !tc.shuffle {
					return NewBatches(tc.n, nil, tc.cfg), nil
				}
				src := rand.NewPCG(seed, 7)
				return NewBatches(tc.n, rand.New(src), tc.cfg), src
			}
			for k := 0; k <= tc.steps; k++ {
				// The receiver of the restore is fresh, or has run j batches
				// of its own beforehand: the restore overrides both.
				for _, j := range []int{0, 2} {
					a, srcA := newBatches(1)
					okA := false
					for range k {
						okA = a.Next()
					}
					data, err := a.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					c, srcC := newBatches(99)
					for range j {
						c.Next()
					}
					if tc.shuffle {
						srcData, err := srcA.MarshalBinary()
						if err != nil {
							t.Fatal(err)
						}
						if err := srcC.UnmarshalBinary(srcData); err != nil {
							t.Fatal(err)
						}
					}
					if err := c.UnmarshalBinary(data); err != nil {
						t.Fatalf("k=%d j=%d: %v", k, j, err)
					}
					if again, _ := c.MarshalBinary(); !bytes.Equal(again, data) {
						t.Fatalf("k=%d j=%d: the restored Batches encodes differently", k, j)
					}
					// The current batch, then the rest, in step with a.
					if sa, sc := current(a, okA), current(c, okA); !sa.equal(sc) || a.Len() != c.Len() {
						t.Fatalf("k=%d j=%d: restored at %+v, want %+v", k, j, sc, sa)
					}
					for step := k; step < tc.steps+2; step++ {
						sa := current(a, a.Next())
						sc := current(c, c.Next())
						if !sa.equal(sc) {
							t.Fatalf("k=%d j=%d, batch %d: resumed %+v, uninterrupted %+v", k, j, step, sc, sa)
						}
					}
				}
			}
		})
	}
}

// TestBatchesResumeEnd checks that an iterator saved at its end (Next has
// returned false) stays there, and that one saved just before it ends.
func TestBatchesResumeEnd(t *testing.T) {
	cfg := BatchConfig{Size: 4, KeepLast: true, Epochs: 2}
	a := NewBatches(10, rand.New(rand.NewPCG(3, 4)), cfg)
	var steps int
	for a.Next() {
		steps++
	}
	if steps != 6 {
		t.Fatalf("%d batches, want 6", steps)
	}
	data, _ := a.MarshalBinary()
	c := NewBatches(10, rand.New(rand.NewPCG(5, 6)), cfg)
	if err := c.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if c.Next() {
			t.Fatal("Next true after restoring an ended iterator")
		}
	}
	if c.Len() != 0 || c.Epoch() != 1 {
		t.Errorf("ended iterator restored with Len %d, Epoch %d", c.Len(), c.Epoch())
	}
}

// TestBatchesFreshRoundTrip restores a never-started Batches, which then
// starts as a fresh one does.
func TestBatchesFreshRoundTrip(t *testing.T) {
	cfg := BatchConfig{Size: 3, Epochs: 2}
	a := NewBatches(8, rand.New(rand.NewPCG(1, 2)), cfg)
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := NewBatches(8, rand.New(rand.NewPCG(1, 2)), cfg)
	c.Next()
	c.Next()
	// c has run, but its source is reset as a caller would restore it.
	c.rng = rand.New(rand.NewPCG(1, 2))
	if err := c.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 || c.Epoch() != 0 || c.Batch() != 0 {
		t.Errorf("restored fresh Batches has Len %d, Epoch %d, Batch %d", c.Len(), c.Epoch(), c.Batch())
	}
	for {
		sa, sc := current(a, a.Next()), current(c, c.Next())
		if !sa.equal(sc) {
			t.Fatalf("resumed %+v, uninterrupted %+v", sc, sa)
		}
		if !sa.ok {
			break
		}
	}
}

// batchesFields are the fields MarshalBinary writes, in its order, to make
// inconsistent states.
type batchesFields struct {
	size                     int
	keepLast                 bool
	epochs, n                int
	perm                     []int
	start, end, epoch, batch int
	started, done            bool
	extra                    bool // a trailing value
	kind                     string
	version                  uint32
}

func fieldsOf(b *Batches) batchesFields {
	return batchesFields{b.cfg.Size, b.cfg.KeepLast, b.cfg.Epochs, len(b.perm), slices.Clone(b.perm),
		b.start, b.end, b.epoch, b.batch, b.started, b.done, false, batchesKind, batchesVersion}
}

func (f batchesFields) encode() []byte {
	return state.Encode(f.kind, f.version, func(w *state.Writer) {
		w.Int(f.size)
		w.Bool(f.keepLast)
		w.Int(f.epochs)
		w.Int(f.n)
		w.Ints(f.perm)
		w.Int(f.start)
		w.Int(f.end)
		w.Int(f.epoch)
		w.Int(f.batch)
		w.Bool(f.started)
		w.Bool(f.done)
		if f.extra {
			w.Int(0)
		}
	})
}

func TestBatchesUnmarshalErrors(t *testing.T) {
	const n = 10
	cfg := BatchConfig{Size: 3, KeepLast: true, Epochs: 3}
	// The receiver is mid-way in its second epoch.
	b := NewBatches(n, rand.New(rand.NewPCG(1, 2)), cfg)
	for range 6 {
		b.Next()
	}
	if b.Epoch() != 1 || b.Batch() != 1 {
		t.Fatalf("receiver at epoch %d batch %d", b.Epoch(), b.Batch())
	}
	// The state of another iterator of the same shape, valid for b.
	other := NewBatches(n, rand.New(rand.NewPCG(3, 4)), cfg)
	for range 2 {
		other.Next()
	}
	good := fieldsOf(other)
	if err := NewBatches(n, nil, cfg).UnmarshalBinary(good.encode()); err != nil {
		t.Fatalf("the unaltered fields do not decode: %v", err)
	}
	valid, _ := other.MarshalBinary()
	if !bytes.Equal(valid, good.encode()) {
		t.Fatal("batchesFields.encode differs from MarshalBinary")
	}
	with := func(f func(*batchesFields)) []byte {
		g := good
		g.perm = slices.Clone(good.perm)
		f(&g)
		return g.encode()
	}
	state0 := func(n int, cfg BatchConfig) []byte {
		data, _ := NewBatches(n, nil, cfg).MarshalBinary()
		return data
	}
	flipped := func(i int) []byte {
		d := slices.Clone(valid)
		d[i] ^= 0x10
		return d
	}

	type errCase struct {
		name    string
		data    []byte
		corrupt bool   // the error wraps state.ErrCorrupt
		want    string // in the message
	}
	cases := []errCase{
		{"other n", state0(n+1, cfg), false, "rows"},
		{"other size", state0(n, BatchConfig{Size: 4, KeepLast: true, Epochs: 3}), false, "Size"},
		{"other KeepLast", state0(n, BatchConfig{Size: 3, Epochs: 3}), false, "KeepLast"},
		{"other Epochs", state0(n, BatchConfig{Size: 3, KeepLast: true}), false, "Epochs"},
		{"nil", nil, true, ""},
		{"empty", []byte{}, true, ""},
		{"header only", valid[:8], true, ""},
		{"truncated by one", valid[:len(valid)-1], true, ""},
		{"truncated by half", valid[:len(valid)/2], true, ""},
		{"appended byte", append(slices.Clone(valid), 0), true, ""},
		{"other kind", with(func(f *batchesFields) { f.kind = "optim.Adam" }), true, "optim.Adam"},
		{"version 2", with(func(f *batchesFields) { f.version = 2 }), true, "version"},
		{"trailing value", with(func(f *batchesFields) { f.extra = true }), true, "left"},
		{"short permutation", with(func(f *batchesFields) { f.perm = f.perm[:n-1] }), true, "permutation"},
		{"long permutation", with(func(f *batchesFields) { f.perm = append(f.perm, 0) }), true, "permutation"},
		{"repeated row", with(func(f *batchesFields) { f.perm[0] = f.perm[1] }), true, "permutation"},
		{"row n", with(func(f *batchesFields) { f.perm[4] = n }), true, "permutation"},
		{"negative row", with(func(f *batchesFields) { f.perm[4] = -1 }), true, "permutation"},
		{"start past n", with(func(f *batchesFields) { f.start, f.end = 12, 15 }), true, "rows"},
		{"negative start", with(func(f *batchesFields) { f.start = -3 }), true, "rows"},
		{"end past n", with(func(f *batchesFields) { f.end = n + 1 }), true, "rows"},
		{"end before start", with(func(f *batchesFields) { f.end = f.start }), true, "rows"},
		{"start off the grid", with(func(f *batchesFields) { f.start, f.end = 4, 7 }), true, "rows"},
		{"batch not at start", with(func(f *batchesFields) { f.batch = 2 }), true, "batch"},
		{"negative epoch", with(func(f *batchesFields) { f.epoch = -1 }), true, "negative"},
		{"negative batch", with(func(f *batchesFields) { f.batch = -1 }), true, "negative"},
		{"epoch past the limit", with(func(f *batchesFields) { f.epoch = 3 }), true, "epoch"},
		{"not started yet at a batch", with(func(f *batchesFields) { f.started = false }), true, "not started"},
		{"done mid-epoch", with(func(f *batchesFields) { f.done = true }), true, "done"},
	}
	for i := range valid {
		cases = append(cases, errCase{"flipped byte", flipped(i), true, ""})
	}
	before, _ := b.MarshalBinary()
	for _, tc := range cases {
		err := b.UnmarshalBinary(tc.data)
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case !strings.HasPrefix(err.Error(), "datasets: Batches: "):
			t.Errorf("%s: error %q without the datasets: Batches: prefix", tc.name, err)
		case errors.Is(err, state.ErrCorrupt) != tc.corrupt:
			t.Errorf("%s: error %q wraps ErrCorrupt %v, want %v", tc.name, err, !tc.corrupt, tc.corrupt)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
		if after, _ := b.MarshalBinary(); !bytes.Equal(after, before) {
			t.Fatalf("%s: the receiver changed", tc.name)
		}
	}
	if err := b.UnmarshalBinary(valid); err != nil {
		t.Fatalf("valid state after the errors: %v", err)
	}
}
