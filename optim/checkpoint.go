package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder/internal/state"
)

// Checkpoints of the first-order optimizers (SGD, Centered, RMSProp, Adam),
// their MarshalBinary and UnmarshalBinary (encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler): the state, framed by package internal/state
// under the kind "optim.<Name>", version checkpointVersion, holds
//
//	settings   each setting that shapes the update, defaults filled in, in
//	           the order of the optimizer's settings method (Float or Bool)
//	t          the number of updates (Int)
//	layers     the number of layers of the per-element state (Int), then
//	           per layer out, in (Int), the lengths of the Extra parameters
//	           (Ints) and each of the optimizer's state arrays (Floats)
//
// so that N/2 updates, a checkpoint restored into a fresh optimizer with the
// same settings and N/2 more updates give the parameters of N updates bit
// for bit. The curvature-based optimizers (KFAC, ACP, Newton,
// Preconditioned) save the state of their engine with the same settings
// (param) and framing: see engine_state.go.

// ErrCorruptCheckpoint is wrapped by the errors of UnmarshalBinary for data
// that is not a valid checkpoint of the optimizer: truncated or altered
// data, another optimizer's state, inconsistent shapes. It is package
// internal/state's ErrCorrupt, exported here for errors.Is.
var ErrCorruptCheckpoint = state.ErrCorrupt

// checkpointVersion is the version of the layout above.
const checkpointVersion = 1

// maxSettings bounds the number of settings of a first-order optimizer, the
// size of the arrays that hold them without allocating.
const maxSettings = 6

// param is one setting that shapes an update, after defaults: a float, a
// flag, an integer or a text, as its kind says.
type param struct {
	name  string
	kind  paramKind
	value float64
	flag  bool
	n     int
	text  string
}

// paramKind is the type of a param's value.
type paramKind uint8

const (
	floatKind paramKind = iota
	flagKind
	intKind
	textKind
)

func floatParam(name string, v float64) param { return param{name: name, value: v} }
func flagParam(name string, v bool) param     { return param{name: name, kind: flagKind, flag: v} }
func intParam(name string, v int) param       { return param{name: name, kind: intKind, n: v} }
func textParam(name string, v string) param   { return param{name: name, kind: textKind, text: v} }

// size returns the number of bytes the setting takes in a checkpoint.
func (p param) size() int {
	switch p.kind {
	case flagKind:
		return 1
	case textKind:
		return 8 + len(p.text)
	}
	return 8
}

// write appends the setting.
func (p param) write(w *state.Writer) {
	switch p.kind {
	case flagKind:
		w.Bool(p.flag)
	case intKind:
		w.Int(p.n)
	case textKind:
		w.String(p.text)
	default:
		w.Float(p.value)
	}
}

// readEqual reads the setting a checkpoint holds in the place of p and
// returns an error naming it when it differs from p, bit for bit for
// floats: "checkpoint has Rate=0.001, this optimizer Rate=0.002". A failed
// read is left to the Reader's error.
func (p param) readEqual(r *state.Reader) error {
	differ := func(format string, v, mine any) error {
		return fmt.Errorf("checkpoint has %s="+format+", this optimizer %s="+format, p.name, v, p.name, mine)
	}
	switch p.kind {
	case flagKind:
		if v := r.Bool(); r.Err() == nil && v != p.flag {
			return differ("%t", v, p.flag)
		}
	case intKind:
		if v := r.Int(); r.Err() == nil && v != p.n {
			return differ("%d", v, p.n)
		}
	case textKind:
		if v := r.String(); r.Err() == nil && v != p.text {
			return differ("%q", v, p.text)
		}
	default:
		if v := r.Float(); r.Err() == nil && math.Float64bits(v) != math.Float64bits(p.value) {
			return differ("%g", v, p.value)
		}
	}
	return nil
}

// marshalElem returns the checkpoint of a first-order optimizer of the
// given kind: its settings ps, its number of updates t and its per-element
// state e, of which arrays (1 or 2) arrays are saved per layer. It
// allocates the returned slice, at its exact length, and nothing else but
// the Writer of state.AppendEncode.
func marshalElem(kind string, ps []param, t int, e *elemState, arrays int) []byte {
	n := 8 + e.encodedLen(arrays)
	for _, p := range ps {
		n += p.size()
	}
	buf := make([]byte, 0, state.EncodedLen(kind, n))
	return state.AppendEncode(buf, kind, checkpointVersion, func(w *state.Writer) {
		for _, p := range ps {
			p.write(w)
		}
		w.Int(t)
		e.write(w, arrays)
	})
}

// unmarshalElem reads a checkpoint written by marshalElem for the kind
// "optim.<name>" into new values, which it returns: the number of updates
// and the per-element state, the gather buffers of old kept. It returns an
// error prefixed "optim: <name>: " when a setting of the checkpoint differs
// from ps (naming the first), and one that also wraps state.ErrCorrupt when
// the data is not a valid checkpoint of the kind: bad frame or checksum, a
// negative number of updates, a shape that is not positive, a state array
// whose length is not that of its layer.
func unmarshalElem(name string, data []byte, ps []param, arrays int, old *elemState) (int, elemState, error) {
	var (
		t int
		e elemState
	)
	err := state.Decode(data, "optim."+name, checkpointVersion, func(r *state.Reader, _ uint32) error {
		for _, p := range ps {
			if err := p.readEqual(r); err != nil {
				return err
			}
		}
		if t = r.Int(); t < 0 {
			r.Fail("%d updates", t)
		}
		e = readElemState(r, arrays)
		return nil
	})
	if err != nil {
		return 0, elemState{}, fmt.Errorf("optim: %s: %w", name, err)
	}
	e.gp, e.gg = old.gp, old.gg
	return t, e, nil
}

// encodedLen returns the number of bytes write appends.
func (e *elemState) encodedLen(arrays int) int {
	n := 8
	for _, s := range e.shape {
		n += 8 + 8 + 8 + 8*len(s.extra) + arrays*(8+8*s.size())
	}
	return n
}

// write appends the number of layers and, for each, its shape and its
// first arrays state arrays (s0, then s1 when arrays is 2).
func (e *elemState) write(w *state.Writer, arrays int) {
	w.Int(len(e.shape))
	for k, s := range e.shape {
		w.Int(s.out)
		w.Int(s.in)
		w.Ints(s.extra)
		w.Floats(e.s0[k])
		if arrays == 2 {
			w.Floats(e.s1[k])
		}
	}
}

// readElemState reads what write wrote into a new elemState, recording on r
// the failures of its checks: shapes positive, state arrays of the length of
// their layer.
func readElemState(r *state.Reader, arrays int) elemState {
	var e elemState
	n := r.Int()
	if n < 0 {
		r.Fail("%d layers", n)
	}
	// Grown by append, not made with n, so that a corrupt n fails at the
	// first missing layer instead of allocating.
	for k := 0; k < n && r.Err() == nil; k++ {
		s := elemShape{out: r.Int(), in: r.Int()}
		s.extra = r.Ints()
		if len(s.extra) == 0 {
			s.extra = nil // as elemShapeOf leaves it
		}
		size, ok := s.checkedSize()
		if r.Err() != nil {
			break
		}
		if !ok {
			r.Fail("layer %d: shape %d×%d with Extra lengths %v, want positive sizes", k, s.out, s.in, s.extra)
			break
		}
		s0 := r.Floats()
		var s1 []float64
		if arrays == 2 {
			s1 = r.Floats()
		}
		if r.Err() != nil {
			break
		}
		if len(s0) != size || (arrays == 2 && len(s1) != size) {
			r.Fail("layer %d: state arrays of %d and %d values for a %d×%d layer with Extra lengths %v, want %d", k, len(s0), len(s1), s.out, s.in, s.extra, size)
			break
		}
		e.shape = append(e.shape, s)
		e.s0 = append(e.s0, s0)
		e.s1 = append(e.s1, s1)
	}
	return e
}

// checkedSize returns s.size() and true when every dimension is positive
// and the size does not overflow an int.
func (s elemShape) checkedSize() (int, bool) {
	if s.out <= 0 || s.in <= 0 || s.out > math.MaxInt/s.in {
		return 0, false
	}
	n := s.out * s.in
	add := func(m int) bool {
		if m <= 0 || n > math.MaxInt-m {
			return false
		}
		n += m
		return true
	}
	if !add(s.out) {
		return 0, false
	}
	for _, m := range s.extra {
		if !add(m) {
			return 0, false
		}
	}
	return n, true
}
