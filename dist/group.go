package dist

import (
	"fmt"
	"sync"
)

// NewGroup returns the n Comms of a group of n workers within one process,
// one per goroutine: comms[r] has rank r. A collective returns on every
// rank once all n have called it. Reductions add (or compare) the buffers
// in rank order, into every rank's buffer, so that every rank gets the same
// result bit for bit. Calls that disagree between ranks (another
// collective, another length, another op or root) are programmer errors
// and panic, on the rank that completes the collective, with a message
// prefixed "dist: ". Each Comm must be used by one goroutine at a time.
// It panics unless n ≥ 1.
func NewGroup(n int) []Comm {
	if n < 1 {
		panic(fmt.Sprintf("dist: NewGroup(%d), want n ≥ 1", n))
	}
	g := &group{size: n, bufs: make([][]float64, n), bytes: make([][]byte, n), calls: make([]call, n)}
	g.cond = sync.NewCond(&g.mu)
	comms := make([]Comm, n)
	for r := range comms {
		comms[r] = &member{g: g, rank: r}
	}
	return comms
}

// call is one rank's side of a collective.
type call struct {
	kind string // "AllReduce" or "Broadcast"
	op   Op
	root int
	n    int
}

type group struct {
	mu      sync.Mutex
	cond    *sync.Cond
	size    int
	bufs    [][]float64 // the buffers of the ranks that arrived
	bytes   [][]byte    // of BroadcastBytes
	calls   []call
	arrived int
	gen     uint64 // completed collectives
	scratch []float64
}

type member struct {
	g    *group
	rank int
}

func (m *member) Rank() int { return m.rank }
func (m *member) Size() int { return m.g.size }

// AllReduce replaces buf on every rank by the reduction op of all ranks'
// buffers, in rank order.
func (m *member) AllReduce(buf []float64, op Op) error {
	if op != Sum && op != Max {
		panic(fmt.Sprintf("dist: AllReduce with %v", op))
	}
	m.g.collective(m.rank, buf, nil, call{kind: "AllReduce", op: op, n: len(buf)})
	return nil
}

// Broadcast replaces buf on every rank by rank root's.
func (m *member) Broadcast(buf []float64, root int) error {
	if root < 0 || root >= m.g.size {
		panic(fmt.Sprintf("dist: Broadcast from root %d in a group of %d", root, m.g.size))
	}
	m.g.collective(m.rank, buf, nil, call{kind: "Broadcast", root: root, n: len(buf)})
	return nil
}

// BroadcastBytes replaces buf on every rank by rank root's.
func (m *member) BroadcastBytes(buf []byte, root int) error {
	if root < 0 || root >= m.g.size {
		panic(fmt.Sprintf("dist: BroadcastBytes from root %d in a group of %d", root, m.g.size))
	}
	m.g.collective(m.rank, nil, buf, call{kind: "BroadcastBytes", root: root, n: len(buf)})
	return nil
}

// collective deposits rank's buffer (buf, or b for bytes) and waits until every rank has; the
// last to arrive computes the result into every buffer.
func (g *group) collective(rank int, buf []float64, b []byte, c call) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.size == 1 {
		return // the reduction of one buffer, the broadcast of one's own
	}
	g.bufs[rank], g.bytes[rank], g.calls[rank] = buf, b, c
	g.arrived++
	gen := g.gen
	if g.arrived < g.size {
		for g.gen == gen {
			g.cond.Wait()
		}
		return
	}
	for r := 1; r < g.size; r++ {
		if g.calls[r] != g.calls[0] {
			panic(fmt.Sprintf("dist: ranks disagree on a collective: rank 0 called %+v, rank %d %+v", g.calls[0], r, g.calls[r]))
		}
	}
	switch c.kind {
	case "AllReduce":
		if cap(g.scratch) < c.n {
			g.scratch = make([]float64, c.n)
		}
		acc := g.scratch[:c.n]
		copy(acc, g.bufs[0])
		for r := 1; r < g.size; r++ {
			b := g.bufs[r]
			if c.op == Sum {
				for i, v := range b {
					acc[i] += v
				}
			} else {
				for i, v := range b {
					acc[i] = max(acc[i], v)
				}
			}
		}
		for r := range g.bufs {
			copy(g.bufs[r], acc)
		}
	case "Broadcast":
		for r := range g.bufs {
			if r != c.root {
				copy(g.bufs[r], g.bufs[c.root])
			}
		}
	case "BroadcastBytes":
		for r := range g.bytes {
			if r != c.root {
				copy(g.bytes[r], g.bytes[c.root])
			}
		}
	}
	clear(g.bufs)
	clear(g.bytes)
	g.arrived = 0
	g.gen++
	g.cond.Broadcast()
}
