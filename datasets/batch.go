package datasets

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/state"
)

// DefaultBatchSize is the batch size used when BatchConfig.Size is zero.
const DefaultBatchSize = 100

// BatchConfig configures Batches. Its zero value gives shuffled batches of
// DefaultBatchSize rows, drops the last partial batch of each epoch and runs
// for ever. Values of BatchConfig are safe for concurrent use.
type BatchConfig struct {
	// Size is the number of rows per batch. Default DefaultBatchSize.
	Size int
	// KeepLast keeps the last batch of an epoch when it has fewer than
	// Size rows (n is not a multiple of Size). Default false: that batch is
	// dropped, so every batch has Size rows; the dropped rows come back at
	// random places in the next epochs.
	KeepLast bool
	// Epochs is the number of passes over the data after which Next
	// returns false. Default 0: no limit.
	Epochs int
}

// Batches iterates over the rows 0…n-1 of a data set in minibatches, in a
// new random order each epoch. Each epoch shuffles a permutation of the rows
// with the *rand.Rand given to NewBatches, so the same seed gives the same
// sequence of batches. Rows and Labels copy the rows of the current batch
// into a destination that is reused from batch to batch, so that iteration
// allocates nothing in steady state:
//
//	it := datasets.NewBatches(n, rand.New(rand.NewPCG(1, 2)), datasets.BatchConfig{Size: 100, Epochs: 10})
//	var xb, yb *mat.Dense
//	for it.Next() {
//		xb = it.Rows(xb, x)
//		yb = it.Rows(yb, y)
//		// train on xb, yb during epoch it.Epoch()
//	}
//
// MarshalBinary and UnmarshalBinary save and restore the position of a
// Batches for a checkpoint, so that a resumed run sees the same batches as
// an uninterrupted one; the random source is saved by the caller (see
// MarshalBinary).
//
// A Batches is not safe for concurrent use.
type Batches struct {
	cfg        BatchConfig
	rng        *rand.Rand
	perm       []int
	start, end int // the current batch is perm[start:end]
	epoch      int
	batch      int
	started    bool
	done       bool
}

// NewBatches returns an iterator over minibatches of the rows 0…n-1. A nil
// rng gives the rows in order, the same every epoch. NewBatches panics if n
// is not positive, if cfg.Size or cfg.Epochs is negative, or if cfg.Size
// exceeds n while partial batches are dropped (there would be no batch).
func NewBatches(n int, rng *rand.Rand, cfg BatchConfig) *Batches {
	if cfg.Size == 0 {
		cfg.Size = DefaultBatchSize
	}
	switch {
	case n <= 0:
		panic(fmt.Sprintf("datasets: NewBatches: %d rows", n))
	case cfg.Size < 0:
		panic(fmt.Sprintf("datasets: NewBatches: batch size %d", cfg.Size))
	case cfg.Epochs < 0:
		panic(fmt.Sprintf("datasets: NewBatches: %d epochs", cfg.Epochs))
	case cfg.Size > n && !cfg.KeepLast:
		panic(fmt.Sprintf("datasets: NewBatches: batch size %d exceeds the %d rows and partial batches are dropped", cfg.Size, n))
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	return &Batches{cfg: cfg, rng: rng, perm: perm}
}

// Next advances to the next batch, starting a new epoch with a new order of
// the rows when the current one is exhausted. It returns false once
// cfg.Epochs epochs are done.
func (b *Batches) Next() bool {
	if b.done {
		return false
	}
	n, size := len(b.perm), b.cfg.Size
	switch {
	case !b.started:
		b.started = true
		b.shuffle()
		b.start = 0
	default:
		b.start = b.end
		b.batch++
		left := n - b.start
		if left == 0 || (left < size && !b.cfg.KeepLast) {
			if b.cfg.Epochs > 0 && b.epoch+1 >= b.cfg.Epochs {
				b.done = true
				b.start, b.end = 0, 0
				return false
			}
			b.epoch++
			b.batch = 0
			b.shuffle()
			b.start = 0
		}
	}
	b.end = min(b.start+size, n)
	return true
}

func (b *Batches) shuffle() {
	if b.rng == nil {
		return
	}
	b.rng.Shuffle(len(b.perm), func(i, j int) { b.perm[i], b.perm[j] = b.perm[j], b.perm[i] })
}

// Epoch returns the epoch of the current batch, counting from 0.
func (b *Batches) Epoch() int { return b.epoch }

// Batch returns the position of the current batch in its epoch, counting
// from 0; Batch() == 0 marks the start of an epoch.
func (b *Batches) Batch() int { return b.batch }

// PerEpoch returns the number of batches in each epoch.
func (b *Batches) PerEpoch() int {
	n, size := len(b.perm), b.cfg.Size
	if b.cfg.KeepLast {
		return (n + size - 1) / size
	}
	return n / size
}

// Len returns the number of rows in the current batch: cfg.Size, or fewer
// for the last batch of an epoch when cfg.KeepLast is set.
func (b *Batches) Len() int { return b.end - b.start }

// Indices returns the row indices of the current batch. The slice is owned
// by b and changes with the next epoch; it must not be modified.
func (b *Batches) Indices() []int { return b.perm[b.start:b.end] }

// Rows copies the rows of src that make up the current batch into dst, in
// the order of Indices, and returns dst. A nil dst is allocated. A dst of
// another shape (the last, partial batch) is reshaped with Reset and
// ReuseAs, which reuses its memory when large enough, so dst must not be a
// view of another matrix. Rows panics if src does not have the n rows
// given to NewBatches.
func (b *Batches) Rows(dst, src *mat.Dense) *mat.Dense {
	s := src.RawMatrix()
	if s.Rows != len(b.perm) {
		panic(fmt.Sprintf("datasets: Batches.Rows: source has %d rows, want %d", s.Rows, len(b.perm)))
	}
	m := b.Len()
	if m == 0 {
		panic("datasets: Batches.Rows: no current batch (call Next)")
	}
	if dst == nil {
		dst = mat.NewDense(m, s.Cols, nil)
	} else if r, c := dst.Dims(); r != m || c != s.Cols {
		dst.Reset()
		dst.ReuseAs(m, s.Cols)
	}
	d := dst.RawMatrix()
	for i, j := range b.Indices() {
		copy(d.Data[i*d.Stride:i*d.Stride+d.Cols], s.Data[j*s.Stride:j*s.Stride+s.Cols])
	}
	return dst
}

// Labels copies the labels of the current batch, src[i] for i in Indices,
// into dst[:0] and returns it; dst's memory is reused when large enough.
// Labels panics if src does not have the n entries given to NewBatches.
func (b *Batches) Labels(dst, src []int) []int {
	if len(src) != len(b.perm) {
		panic(fmt.Sprintf("datasets: Batches.Labels: source has %d labels, want %d", len(src), len(b.perm)))
	}
	dst = dst[:0]
	for _, j := range b.Indices() {
		dst = append(dst, src[j])
	}
	return dst
}

// batchesKind and batchesVersion identify the encoding of Batches.
const (
	batchesKind    = "datasets.Batches"
	batchesVersion = 1
)

// MarshalBinary encodes the position of b: its configuration, its number
// of rows, the current order of the rows, the current batch, epoch and
// whether it has started and ended. It implements
// encoding.BinaryMarshaler and never fails.
//
// The state of the *rand.Rand given to NewBatches is not included: b does
// not own it, and the caller often draws from it for other things too. To
// resume exactly, save the rng's source at the same point (a *rand.PCG or
// *rand.ChaCha8 of math/rand/v2 implements encoding.BinaryMarshaler; a
// *rand.Rand holds no state besides its source) and restore both:
//
//	src := rand.NewPCG(1, 2)
//	it := datasets.NewBatches(n, rand.New(src), cfg)
//	// … after some calls to it.Next:
//	itState, _ := it.MarshalBinary()
//	srcState, _ := src.MarshalBinary()
//
//	// Later, perhaps in another process:
//	src2 := rand.NewPCG(0, 0)
//	it2 := datasets.NewBatches(n, rand.New(src2), cfg)
//	if err := src2.UnmarshalBinary(srcState); err != nil { … }
//	if err := it2.UnmarshalBinary(itState); err != nil { … }
//	// it2 is at the batch it was at; it2.Next continues where it left off.
//
// A Batches made with a nil rng has no source to save.
func (b *Batches) MarshalBinary() ([]byte, error) {
	return state.Encode(batchesKind, batchesVersion, func(w *state.Writer) {
		w.Int(b.cfg.Size)
		w.Bool(b.cfg.KeepLast)
		w.Int(b.cfg.Epochs)
		w.Int(len(b.perm))
		w.Ints(b.perm)
		w.Int(b.start)
		w.Int(b.end)
		w.Int(b.epoch)
		w.Int(b.batch)
		w.Bool(b.started)
		w.Bool(b.done)
	}), nil
}

// UnmarshalBinary restores the position saved by MarshalBinary into b,
// which must have been made by NewBatches with the same number of rows
// and the same configuration (after defaults: a zero Size and
// DefaultBatchSize are the same); the rng given to NewBatches is restored
// separately by the caller (see MarshalBinary). It implements
// encoding.BinaryUnmarshaler.
//
// UnmarshalBinary returns an error, prefixed by "datasets: Batches: ", when
// the number of rows or a field of the configuration differs, and an error
// wrapping state.ErrCorrupt when data is not a valid encoding of a Batches
// (truncated, altered, or holding an inconsistent position). On error, b
// is unchanged.
func (b *Batches) UnmarshalBinary(data []byte) error {
	var (
		perm                   []int
		start, end, epoch, bat int
		started, done          bool
	)
	err := state.Decode(data, batchesKind, batchesVersion, func(r *state.Reader, _ uint32) error {
		size, keepLast, epochs, n := r.Int(), r.Bool(), r.Int(), r.Int()
		if err := r.Err(); err != nil {
			return err
		}
		switch {
		case n != len(b.perm):
			return fmt.Errorf("state of %d rows, this Batches has %d", n, len(b.perm))
		case size != b.cfg.Size:
			return fmt.Errorf("state has BatchConfig.Size %d, this Batches %d", size, b.cfg.Size)
		case keepLast != b.cfg.KeepLast:
			return fmt.Errorf("state has BatchConfig.KeepLast %v, this Batches %v", keepLast, b.cfg.KeepLast)
		case epochs != b.cfg.Epochs:
			return fmt.Errorf("state has BatchConfig.Epochs %d, this Batches %d", epochs, b.cfg.Epochs)
		}
		perm = r.Ints()
		start, end, epoch, bat = r.Int(), r.Int(), r.Int(), r.Int()
		started, done = r.Bool(), r.Bool()
		if r.Err() != nil {
			return nil // Decode returns the Reader's error
		}
		checkBatches(r, b.cfg, n, perm, start, end, epoch, bat, started, done)
		return nil
	})
	if err != nil {
		return fmt.Errorf("datasets: Batches: %w", err)
	}
	copy(b.perm, perm)
	b.start, b.end, b.epoch, b.batch = start, end, epoch, bat
	b.started, b.done = started, done
	return nil
}

// checkBatches records on r a failure for a decoded position that Next
// cannot reach with configuration cfg and n rows.
func checkBatches(r *state.Reader, cfg BatchConfig, n int, perm []int, start, end, epoch, batch int, started, done bool) {
	if len(perm) != n {
		r.Fail("permutation of %d rows, want %d", len(perm), n)
		return
	}
	seen := make([]bool, n)
	for _, i := range perm {
		if i < 0 || i >= n || seen[i] {
			r.Fail("order of the rows is not a permutation of 0…%d (holds %d)", n-1, i)
			return
		}
		seen[i] = true
	}
	size := cfg.Size
	switch {
	case epoch < 0 || batch < 0:
		r.Fail("negative epoch %d or batch %d", epoch, batch)
	case cfg.Epochs > 0 && epoch >= cfg.Epochs:
		r.Fail("epoch %d of %d", epoch, cfg.Epochs)
	case !started && (done || start != 0 || end != 0 || epoch != 0 || batch != 0):
		r.Fail("not started but at rows [%d, %d), epoch %d, batch %d, done %v", start, end, epoch, batch, done)
	case done && (start != 0 || end != 0 || cfg.Epochs == 0 || epoch != cfg.Epochs-1):
		r.Fail("done at rows [%d, %d), epoch %d of %d", start, end, epoch, cfg.Epochs)
	case started && !done && (start < 0 || start >= n || start%size != 0 || start/size != batch ||
		end != min(start+size, n) || (!cfg.KeepLast && end-start != size)):
		r.Fail("batch %d at rows [%d, %d) of %d with batches of %d (KeepLast %v)", batch, start, end, n, size, cfg.KeepLast)
	}
}
