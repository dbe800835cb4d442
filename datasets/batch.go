package datasets

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// DefaultBatchSize is the batch size used when BatchConfig.Size is zero.
const DefaultBatchSize = 100

// BatchConfig configures Batches. Its zero value gives shuffled batches of
// DefaultBatchSize rows, drops the last partial batch of each epoch and runs
// for ever.
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
