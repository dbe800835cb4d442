package hpsearch

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Scale is how a hyperparameter's range [Min, Max] is mapped to its
// normalised coordinate in [0, 1], the coordinate in which points are sampled
// and distances are measured.
type Scale int

const (
	// Linear maps a value v to
	//
	//	u = (v − Min) / (Max − Min).
	Linear Scale = iota
	// Log maps a value v to
	//
	//	u = (log10 v − log10 Min) / (log10 Max − log10 Min)
	//
	// and needs Min > 0. It is the scale for hyperparameters searched over
	// orders of magnitude, such as a learning rate (thesis §2.3: values
	// "using a logarithmic scale", e.g. {10⁻³, 10⁻², 10⁻¹, 1}).
	Log
)

// String returns "linear" or "log".
func (s Scale) String() string {
	switch s {
	case Linear:
		return "linear"
	case Log:
		return "log"
	}
	return "Scale(" + strconv.Itoa(int(s)) + ")"
}

// Param describes one hyperparameter of a search space. The zero Scale is
// Linear.
type Param struct {
	// Name identifies the hyperparameter in a Point (Point.Get) and in
	// recorded histories. Names must be non-empty and unique in a space.
	Name string
	// Min and Max bound the range, Min < Max, both finite. A Log parameter
	// needs Min > 0.
	Min, Max float64
	// Scale maps the range to the normalised coordinate; Linear by default.
	Scale Scale
	// Integer restricts the values to the integers in [Min, Max]: sampled
	// and grid values are rounded to the nearest integer, and the normalised
	// coordinate runs from the smallest integer ⌈Min⌉ (0) to the largest
	// ⌊Max⌋ (1). Random sampling gives every integer the same probability on
	// a Linear scale, and a probability proportional to the width of its
	// rounding cell [k−½, k+½] in log10 on a Log scale.
	Integer bool
}

// Space is a search space: a list of named hyperparameters, each with a range
// and a scale (thesis §2.3). Points of the space have normalised coordinates
// in [0, 1]^d (log10 of the value where the scale is logarithmic); random
// sampling is uniform in these coordinates and the cost models of biased
// random search measure Euclidean distances in them.
//
// A Space is immutable once built and safe for concurrent use.
type Space struct {
	params []Param
	index  map[string]int
	// lo, hi: transformed (log10 for Log) bounds of the normalised
	// coordinate; for Integer parameters the extreme integers.
	lo, hi []float64
	// vlo, vhi: value bounds (the extreme integers for Integer parameters).
	vlo, vhi []float64
	// slo, shi: transformed bounds of random sampling; for Integer
	// parameters the rounding cells of the extreme integers are included.
	slo, shi []float64
}

// NewSpace returns the space of the given hyperparameters, in that order. The
// order is the order of Point.Values, of Point.Unit and of grid enumeration.
// It returns an error prefixed with "hpsearch: " when a parameter is invalid:
// an empty or repeated name, non-finite bounds, Min ≥ Max, a Log scale with
// Min ≤ 0, an unknown Scale, or an Integer parameter whose range holds no
// integer.
func NewSpace(params ...Param) (*Space, error) {
	if len(params) == 0 {
		return nil, errors.New("hpsearch: a space needs at least one parameter")
	}
	d := len(params)
	s := &Space{
		params: append([]Param(nil), params...),
		index:  make(map[string]int, d),
		lo:     make([]float64, d), hi: make([]float64, d),
		vlo: make([]float64, d), vhi: make([]float64, d),
		slo: make([]float64, d), shi: make([]float64, d),
	}
	for j, p := range params {
		if p.Name == "" {
			return nil, fmt.Errorf("hpsearch: parameter %d has an empty name", j)
		}
		if _, dup := s.index[p.Name]; dup {
			return nil, fmt.Errorf("hpsearch: parameter name %q is repeated", p.Name)
		}
		s.index[p.Name] = j
		if math.IsNaN(p.Min) || math.IsInf(p.Min, 0) || math.IsNaN(p.Max) || math.IsInf(p.Max, 0) {
			return nil, fmt.Errorf("hpsearch: parameter %q: bounds [%v, %v] are not finite", p.Name, p.Min, p.Max)
		}
		if !(p.Min < p.Max) {
			return nil, fmt.Errorf("hpsearch: parameter %q: Min %v must be less than Max %v", p.Name, p.Min, p.Max)
		}
		switch p.Scale {
		case Linear:
		case Log:
			if !(p.Min > 0) {
				return nil, fmt.Errorf("hpsearch: parameter %q: a log scale needs Min > 0, got Min = %v", p.Name, p.Min)
			}
		default:
			return nil, fmt.Errorf("hpsearch: parameter %q: unknown scale %v", p.Name, p.Scale)
		}
		vlo, vhi := p.Min, p.Max
		slo, shi := p.Min, p.Max
		if p.Integer {
			vlo, vhi = math.Ceil(p.Min), math.Floor(p.Max)
			if vlo > vhi {
				return nil, fmt.Errorf("hpsearch: parameter %q: integer range [%v, %v] holds no integer", p.Name, p.Min, p.Max)
			}
			// vlo ≥ 1 on a Log scale since Min > 0, so vlo−½ > 0.
			slo, shi = vlo-0.5, vhi+0.5
		}
		s.vlo[j], s.vhi[j] = vlo, vhi
		s.lo[j], s.hi[j] = s.fwd(j, vlo), s.fwd(j, vhi)
		s.slo[j], s.shi[j] = s.fwd(j, slo), s.fwd(j, shi)
	}
	return s, nil
}

// fwd is the scale transform of parameter j: identity or log10.
func (s *Space) fwd(j int, v float64) float64 {
	if s.params[j].Scale == Log {
		return math.Log10(v)
	}
	return v
}

// inv is the inverse of fwd.
func (s *Space) inv(j int, t float64) float64 {
	if s.params[j].Scale == Log {
		return math.Pow(10, t)
	}
	return t
}

// Dim returns the number of hyperparameters.
func (s *Space) Dim() int { return len(s.params) }

// Params returns a copy of the hyperparameters, in the order of the space.
func (s *Space) Params() []Param { return append([]Param(nil), s.params...) }

// Index returns the position of the named hyperparameter in the order of the
// space, and false if the space has no such parameter.
func (s *Space) Index(name string) (int, bool) {
	j, ok := s.index[name]
	return j, ok
}

// snap rounds an Integer value and clamps any value to the range of
// parameter j.
func (s *Space) snap(j int, v float64) float64 {
	if s.params[j].Integer {
		v = math.Round(v)
	}
	return math.Min(math.Max(v, s.vlo[j]), s.vhi[j])
}

// value returns the value of parameter j at normalised coordinate u; the
// endpoints u ≤ 0 and u ≥ 1 give the bounds exactly.
func (s *Space) value(j int, u float64) float64 {
	switch {
	case u <= 0:
		return s.vlo[j]
	case u >= 1:
		return s.vhi[j]
	}
	return s.snap(j, s.inv(j, (1-u)*s.lo[j]+u*s.hi[j]))
}

// unit returns the normalised coordinate of value v of parameter j.
func (s *Space) unit(j int, v float64) float64 {
	if s.hi[j] == s.lo[j] {
		return 0
	}
	u := (s.fwd(j, v) - s.lo[j]) / (s.hi[j] - s.lo[j])
	return math.Min(math.Max(u, 0), 1)
}

// point returns the Point with the given values, which it keeps; the values
// must be in range.
func (s *Space) point(values []float64) Point {
	u := make([]float64, len(values))
	for j, v := range values {
		u[j] = s.unit(j, v)
	}
	return Point{space: s, values: values, unit: u}
}

// FromUnit returns the point at normalised coordinates u, which are clamped
// to [0, 1]; Integer values are rounded to the nearest integer, so the point's
// own coordinates (Point.Unit) may differ from u. It panics if len(u) is not
// Dim.
func (s *Space) FromUnit(u []float64) Point {
	if len(u) != len(s.params) {
		panic(fmt.Sprintf("hpsearch: FromUnit: %d coordinates for a %d-dimensional space", len(u), len(s.params)))
	}
	v := make([]float64, len(u))
	for j, uj := range u {
		v[j] = s.value(j, uj)
	}
	return s.point(v)
}

// Sample returns a point drawn uniformly in the normalised space, U(D) of
// algorithm 1, drawing one rng.Float64 per parameter in the order of the
// space. Integer parameters are drawn as described in Param.Integer.
func (s *Space) Sample(rng *rand.Rand) Point {
	v := make([]float64, len(s.params))
	for j := range s.params {
		u := rng.Float64()
		if s.params[j].Integer {
			v[j] = s.snap(j, s.inv(j, (1-u)*s.slo[j]+u*s.shi[j]))
		} else {
			v[j] = s.value(j, u)
		}
	}
	return s.point(v)
}

// NewPoint returns the point with the given values by name. It returns an
// error if a parameter of the space is missing, a name is unknown, or a value
// is not finite, out of range, or not an integer for an Integer parameter.
func (s *Space) NewPoint(values map[string]float64) (Point, error) {
	v := make([]float64, len(s.params))
	for j, p := range s.params {
		x, ok := values[p.Name]
		if !ok {
			return Point{}, fmt.Errorf("hpsearch: point has no value for parameter %q", p.Name)
		}
		if math.IsNaN(x) || x < p.Min || x > p.Max {
			return Point{}, fmt.Errorf("hpsearch: parameter %q: value %v is outside [%v, %v]", p.Name, x, p.Min, p.Max)
		}
		if p.Integer && x != math.Trunc(x) {
			return Point{}, fmt.Errorf("hpsearch: parameter %q: value %v is not an integer", p.Name, x)
		}
		v[j] = x
	}
	if len(values) != len(s.params) {
		for name := range values {
			if _, ok := s.index[name]; !ok {
				return Point{}, fmt.Errorf("hpsearch: point has a value for unknown parameter %q", name)
			}
		}
	}
	return s.point(v), nil
}

// sameAs reports whether s and t have the same parameters.
func (s *Space) sameAs(t *Space) bool {
	if s == t {
		return true
	}
	if t == nil || len(s.params) != len(t.params) {
		return false
	}
	for j := range s.params {
		if s.params[j] != t.params[j] {
			return false
		}
	}
	return true
}

// Point is a set of hyperparameter values, one per parameter of its Space.
// Read values by name with Get (or Int), or all of them with Values or Map.
// A Point is immutable; the zero Point has no space and its methods panic.
type Point struct {
	space  *Space
	values []float64
	unit   []float64
}

// Space returns the space the point belongs to.
func (p Point) Space() *Space { return p.space }

// Get returns the value of the named hyperparameter. It panics if the space
// has no such parameter.
func (p Point) Get(name string) float64 {
	j, ok := p.space.index[name]
	if !ok {
		panic(fmt.Sprintf("hpsearch: unknown hyperparameter %q", name))
	}
	return p.values[j]
}

// Int returns the value of the named hyperparameter as an int, for Integer
// parameters. It panics if the space has no such parameter.
func (p Point) Int(name string) int { return int(math.Round(p.Get(name))) }

// Values returns a copy of the values in the order of the space.
func (p Point) Values() []float64 { return append([]float64(nil), p.values...) }

// Unit returns a copy of the normalised coordinates of the point in [0, 1]^d.
func (p Point) Unit() []float64 { return append([]float64(nil), p.unit...) }

// Map returns the values by name.
func (p Point) Map() map[string]float64 {
	m := make(map[string]float64, len(p.values))
	for j, v := range p.values {
		m[p.space.params[j].Name] = v
	}
	return m
}

// String formats the point as "name=value" pairs in the order of the space.
func (p Point) String() string {
	if p.space == nil {
		return "<nil point>"
	}
	var b strings.Builder
	for j, v := range p.values {
		if j > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.space.params[j].Name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}
