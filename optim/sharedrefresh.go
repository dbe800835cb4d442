package optim

import (
	"fmt"
	"slices"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
)

// Distributed refreshes. With a Comm of more than one worker, the
// refreshes of the layers whose blocks are curvature.Replicated are split
// between the workers: each layer is refreshed by its owner, the owners
// chosen once by the layers' RefreshCost (longest first, each to the
// least loaded worker), and the results are broadcast in layer order and
// installed by the others (Osawa et al. 2019; Pauloski et al. 2020). All
// workers hold the same statistics, so the result is the one every worker
// would have computed: the parameters stay those of one process. Blocks
// that are not Replicated (ACP, Newton's exact blocks, the diagonal) are
// refreshed by every worker.

// refreshOutcome is what the owner of a layer broadcasts about its
// refresh: the header [code, λ_l, raised, bytes].
const (
	refreshHeld   = iota // a factorization is held: install the bytes
	refreshNone          // nothing to factorize yet (no estimate, or ACP's α = 0)
	refreshFailed        // not positive definite even with the damping raised
)

// sharedRefresh is the engine's state of distributed refreshes.
type sharedRefresh struct {
	owner  []int     // owner[j]: the worker that refreshes layer j (-1: every worker)
	header []float64 // the broadcast header
	errs   []error   // the errors of this worker's refreshes
	msgs   [][]byte  // the messages of this worker's refreshes, and the received ones
}

// assign chooses the owners of the Replicated layers: longest refresh first,
// each to the least loaded worker (lowest rank on ties).
func (r *sharedRefresh) assign(e *engine, workers int) {
	n := len(e.layers)
	r.owner = make([]int, n)
	r.errs = make([]error, n)
	r.msgs = make([][]byte, n)
	r.header = make([]float64, 4)
	var order []int
	for j := range e.layers {
		r.owner[j] = -1
		if _, ok := e.layers[j].block.(curvature.Replicated); ok {
			order = append(order, j)
		}
	}
	cost := func(j int) float64 { return e.layers[j].block.(curvature.Replicated).RefreshCost() }
	slices.SortStableFunc(order, func(a, b int) int {
		switch ca, cb := cost(a), cost(b); {
		case ca > cb:
			return -1
		case ca < cb:
			return 1
		}
		return 0
	})
	load := make([]float64, workers)
	for _, j := range order {
		w := 0
		for k := range load {
			if load[k] < load[w] {
				w = k
			}
		}
		r.owner[j] = w
		load[w] += cost(j)
	}
}

// refreshAll refreshes the layers due (refresh, or without a
// factorization), splitting the Replicated ones between the workers of
// s.Comm when it has more than one.
func (e *engine) refreshAll(s *rules, refresh bool) error {
	due := func(j int) bool { return refresh || !e.layers[j].block.Ready() }
	if !dist.Parallel(s.Comm) {
		for j := range e.layers {
			if due(j) {
				if err := e.refresh(j, s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	r := &e.shared
	if r.owner == nil {
		r.assign(e, s.Comm.Size())
	}
	rank := s.Comm.Rank()
	// This worker's refreshes: its own layers and the unshared ones.
	dues := e.dues[:0]
	for j := range e.layers {
		d := due(j)
		dues = append(dues, d)
		if !d || (r.owner[j] >= 0 && r.owner[j] != rank) {
			continue
		}
		err := e.refresh(j, s)
		if r.owner[j] < 0 {
			if err != nil {
				return err // the same on every worker
			}
			continue
		}
		r.errs[j] = err
		if err == nil && e.layers[j].block.Ready() {
			r.msgs[j] = e.layers[j].block.(curvature.Replicated).AppendRefresh(r.msgs[j][:0])
		}
	}
	e.dues = dues
	// Their results, broadcast in layer order.
	for j := range e.layers {
		if !dues[j] || r.owner[j] < 0 {
			continue
		}
		owner := r.owner[j]
		el := &e.layers[j]
		b := el.block.(curvature.Replicated)
		h := r.header
		if owner == rank {
			h[0], h[1], h[2], h[3] = refreshHeld, el.lambda, 0, float64(len(r.msgs[j]))
			switch {
			case r.errs[j] != nil:
				h[0] = refreshFailed
			case !b.Ready():
				h[0] = refreshNone
			}
			want, _ := e.layerDamping(j, s)
			if el.lambda > want {
				h[2] = 1
			}
		}
		if err := s.Comm.Broadcast(h, owner); err != nil {
			return fmt.Errorf("optim: %s: broadcast of layer %d's refresh: %w; parameters left unchanged", s.d.name, j, err)
		}
		switch h[0] {
		case refreshFailed:
			if owner == rank {
				return r.errs[j]
			}
			return fmt.Errorf("optim: %s: layer %d: block not positive definite even with the damping raised (refreshed by worker %d); parameters left unchanged", s.d.name, j, owner)
		case refreshNone:
			continue
		}
		n := int(h[3])
		if cap(r.msgs[j]) < n {
			r.msgs[j] = make([]byte, n)
		}
		msg := r.msgs[j][:n]
		if err := s.Comm.BroadcastBytes(msg, owner); err != nil {
			return fmt.Errorf("optim: %s: broadcast of layer %d's refresh: %w; parameters left unchanged", s.d.name, j, err)
		}
		if owner == rank {
			continue
		}
		if err := b.InstallRefresh(msg); err != nil {
			return fmt.Errorf("optim: %s: layer %d: the refresh of worker %d: %w; parameters left unchanged", s.d.name, j, owner, err)
		}
		el.lambda = h[1]
		e.report.Refreshed = true
		if h[2] != 0 {
			_, scale := e.layerDamping(j, s)
			e.report.DampingRaised++
			if s.OnDampingRaised != nil {
				s.OnDampingRaised(j, el.lambda/scale)
			}
		}
	}
	return nil
}
